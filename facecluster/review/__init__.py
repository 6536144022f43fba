"""``facecluster review``: a local web app to check the people of a library and fix them in place.

A Flask app served by waitress on 127.0.0.1. Every action goes through the library's corrections
(the same API and history as the command line), so the app, the CLI and people.json always agree.
The package itself imports nothing: Flask and waitress load only when the app is served
(``facecluster.review.server``), not with every command.
"""
