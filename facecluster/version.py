"""The package's version, in a module of its own so that any part may read it."""

__version__ = "0.1.0"
