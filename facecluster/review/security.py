"""Who may talk to the review app: the browser the user opened with the printed URL, and nothing else.

- A random token per launch, given once in the printed URL, then kept in an HttpOnly,
  SameSite=Strict cookie; every request without it is refused (403).
- The Host header must name the address the app listens on (no DNS rebinding): 400 otherwise.
- A request that changes something must come from the app's own pages: its Origin header must be the
  app's origin and its form must carry the per-launch form token (no cross-site requests): 403 otherwise.
- Every response forbids framing and sniffing, sends no referrer to other sites (``same-origin``: with
  ``no-referrer`` browsers send ``Origin: null`` on the app's own forms), and HTML gets a
  Content-Security-Policy that allows only the app's own images, styles and script.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field

DEFAULT_HOST = "127.0.0.1"

CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self';"
    " form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Guard:
    """The per-launch secrets and the addresses the app answers to."""

    hosts: frozenset[str]
    """Accepted Host headers ('127.0.0.1:8765', 'localhost:8765')."""
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @classmethod
    def for_address(cls, host: str, port: int) -> Guard:
        """The Host headers browsers send for the app listening on ``host`` (IPv6 literals in brackets)."""
        names = {host, "localhost"} if is_loopback(host) else {host}
        return cls(frozenset(f"[{name}]:{port}" if ":" in name else f"{name}:{port}" for name in names))

    @property
    def cookie(self) -> str:
        """The cookie's name: one per port, so two apps on one machine never take each other's token."""
        return "facecluster-" + next(iter(sorted(self.hosts))).rsplit(":", 1)[1]

    @property
    def form_token(self) -> str:
        """The hidden field every form carries (derived from the token, never the token itself)."""
        return hmac.new(self.token.encode(), b"form", hashlib.sha256).hexdigest()

    def host_ok(self, host: str | None) -> bool:
        return host in self.hosts

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def origin_ok(self, origin: str | None) -> bool:
        return origin is not None and origin in {f"http://{host}" for host in self.hosts}

    def form_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.form_token.encode())


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (localhost, 127.x.x.x, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str) -> None:
    """ValueError for an address the app cannot guard: a wildcard (0.0.0.0, ::), which answers under
    names no Host check can know, or anything but localhost and an IP address."""
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError("give localhost or an IP address of this machine") from None
    if address.is_unspecified:
        raise ValueError(f"{host} listens on every address; give the one address to listen on")
