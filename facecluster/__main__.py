"""`python -m facecluster`: the command line."""

from facecluster.cli import main

main()
