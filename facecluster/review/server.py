"""Serving the review app: waitress (a pure-Python, multi-threaded WSGI server) on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import threading
from contextlib import suppress
from pathlib import Path

from waitress.server import create_server

from facecluster.errors import InvalidInput
from facecluster.library import Library
from facecluster.review.app import create_app
from facecluster.review.security import DEFAULT_HOST, Guard, check_host
from facecluster.review.session import SETTLE_DELAY, ReviewSession

THREADS = 4
LOOP_STEP = 0.2
"""Seconds between checks for ``close()`` while serving."""


class ReviewServer:
    """The review app of ``library`` listening on ``host``:``port`` (0: a free port), until ``close()``."""

    def __init__(
        self, library: Library, host: str = DEFAULT_HOST, port: int = 0, settle_delay: float = SETTLE_DELAY
    ) -> None:
        try:
            check_host(host)
        except ValueError as error:
            raise InvalidInput(
                f"--host {host}: {error if ' ' in str(error) else 'not an IP address or localhost'}"
            ) from None
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" chatter
        try:
            self._server = create_server(_Deferred(), host=host, port=port, threads=THREADS, ident="facecluster")
        except OSError as error:
            raise InvalidInput(f"cannot listen on {host} port {port}: {error.strerror or error}") from error
        self.session = ReviewSession(library, settle_delay)
        self.host, self.port = host, int(self._server.effective_port)
        self.guard = Guard.for_address(host, self.port)
        self._server.application = create_app(self.session, self.guard)
        self._stop, self._serving, self._stopped = threading.Event(), threading.Event(), threading.Event()
        self._closing, self._closed = threading.Lock(), False
        self._launchers: list[Path] = []

    @property
    def url(self) -> str:
        """The address to open: it carries the launch's token, once."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.guard.token}"

    def launcher(self) -> Path:
        """A page in the output folder (readable by its owner only) that sends a browser to ``url``: opening
        it keeps the token off the browser's command line, where other users of the machine could see it."""
        path = self.session.library.output / f".review-{self.port}.html"
        with suppress(FileNotFoundError):
            path.unlink()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as page:
            page.write(
                f'<!DOCTYPE html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={self.url}">'
                f'<a href="{self.url}">facecluster review</a>\n'
            )
        self._launchers.append(path)
        return path

    def serve(self) -> None:
        """Answer requests until interrupted (Ctrl-C) or ``close()``; then settle pending changes."""
        self._serving.set()
        try:
            while not self._stop.is_set():  # waitress's own loop, a step at a time, so close() can end it
                self._server.asyncore.loop(timeout=LOOP_STEP, map=self._server._map, count=1)
        finally:
            self._shut_down()
            self._serving.clear()
            self._stopped.set()

    def close(self) -> None:
        """Stop listening, and bring albums, people.json and the report up to date (from any thread)."""
        self._stop.set()
        if self._serving.is_set():
            self._stopped.wait(timeout=60)
        else:
            self._shut_down()

    def _shut_down(self) -> None:
        with self._closing:
            if self._closed:
                return
            self._closed = True
            for path in self._launchers:
                path.unlink(missing_ok=True)
            self._server.task_dispatcher.shutdown()  # requests in flight finish first, then the sockets close
            self._server.close()
            self.session.stop()


class _Deferred:
    """A placeholder application: waitress needs one before the port it picks is known to the guard."""

    def __call__(self, environ, start_response):  # pragma: no cover - replaced before serving
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"starting"]
