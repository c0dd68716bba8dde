"""The one way the verifier reads anything from another server: a strict HTTPS GET for JSON.

Verifying another issuer's credential means fetching its did:web document and its status lists from addresses the
credential names, i.e. addresses chosen by whoever wrote the file. So the fetcher:
- speaks https only, with certificate checks (plain http only to loopback, and only under test configuration);
- resolves the name itself and refuses the request if ANY address is not public (private, loopback, link-local,
  multicast, reserved, shared, unspecified; IPv4-mapped IPv6 judged as the IPv4 it maps), then connects to the
  very address it checked — a second DNS answer (rebinding) is never asked for;
- follows no redirects (a 3xx is refused: the next hop would need every check again, and no DID document or
  status list we need lives behind one);
- stops after 2 seconds in all (name lookup, connection, TLS, headers and body together — a server that trickles
  bytes cannot hold a request longer) and after 100 KB of body.

Pure of Flask except ``allow_loopback()``, which reads the one test-only setting.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext

TIMEOUT_SECONDS = 2.0
MAX_BYTES = 100 * 1024
MAX_URL = 2000
ACCEPT = "application/did+json, application/did+ld+json, application/ld+json, application/json;q=0.9"
_LOOKUPS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="did-dns")


class FetchRefused(Exception):
    """The document was not fetched, or not usable; the message says exactly why (in the user's language)."""


def allow_loopback() -> bool:
    """Plain http to 127.0.0.0/8 and ::1, for the tests' loopback servers. ``create_app`` refuses the setting
    outside APP_ENV=test, so production never has it."""
    return bool(current_app.config.get("DID_FETCH_ALLOW_LOOPBACK"))


def address_problem(address: str, *, loopback_ok: bool) -> str | None:
    """Why we will not connect to this IP address, or None when it is a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback and loopback_ok:
        return None
    if ip.is_loopback:
        return gettext("%(address)s is a loopback address", address=ip)
    if ip.is_link_local:
        return gettext("%(address)s is a link-local address", address=ip)
    if ip.is_multicast:
        return gettext("%(address)s is a multicast address", address=ip)
    if ip.is_private or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return gettext("%(address)s is a private or reserved address", address=ip)
    return None


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to the host name in the URL (Host header, TLS server name and certificate check)
    that connects to one address we already checked, never resolving the name again."""

    def __init__(self, host: str, port: int, address: str, tls: ssl.SSLContext | None, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self._tls = tls
        # kept here too: http.client hands a closing connection's socket to the response and forgets it
        self.raw_socket: socket.socket | None = None

    def connect(self) -> None:
        self.sock = self.raw_socket = socket.create_connection((self._address, self.port), self.timeout)
        if self._tls is not None:
            self.sock = self._tls.wrap_socket(self.sock, server_hostname=self.host)


def _resolve(host: str, port: int, deadline: float) -> list[str]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        return [str(literal)]
    future = _LOOKUPS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        found = future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        raise FetchRefused(gettext("Looking up %(host)s took longer than 2 seconds.", host=host)) from None
    except (OSError, UnicodeError):
        raise FetchRefused(gettext("The name %(host)s could not be resolved.", host=host)) from None
    return list(dict.fromkeys(info[4][0] for info in found))


def fetch_json(url: str, *, what: str) -> object:
    """GET ``url`` under the rules above and parse the body as JSON. ``what`` names the document in messages.

    Raises FetchRefused with the reason (address refused, timeout, too large, redirect, HTTP error, not JSON).
    """
    loopback_ok = allow_loopback()
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise FetchRefused(gettext("%(what)s: its address is not a usable URL.", what=what))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefused(gettext("%(what)s: its address is not a usable URL.", what=what)) from None
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host or parts.username is not None or parts.password is not None:
        raise FetchRefused(gettext("%(what)s must be at an https:// address; got %(url)s", what=what, url=url[:200]))
    if parts.scheme == "http" and not loopback_ok:
        raise FetchRefused(gettext("%(what)s must be at an https:// address; got %(url)s", what=what, url=url[:200]))
    port = port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + TIMEOUT_SECONDS
    addresses = _resolve(host, port, deadline)
    for address in addresses:
        problem = address_problem(address, loopback_ok=loopback_ok)
        if problem is not None:
            raise FetchRefused(
                gettext("%(what)s was not fetched from %(host)s: %(problem)s.", what=what, host=host, problem=problem)
            )
    if parts.scheme == "http" and not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise FetchRefused(gettext("%(what)s must be at an https:// address; got %(url)s", what=what, url=url[:200]))
    if not addresses:
        raise FetchRefused(gettext("The name %(host)s could not be resolved.", host=host))
    tls = ssl.create_default_context() if parts.scheme == "https" else None
    connection = _PinnedConnection(host, port, addresses[0], tls, timeout=max(0.05, deadline - time.monotonic()))
    # one timer bounds the whole exchange: a per-read timeout alone lets a server send a byte every 1.9 s forever
    expired = threading.Event()
    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, args=(connection, expired))
    watchdog.start()
    try:
        connection.request(
            "GET",
            (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            headers={"Accept": ACCEPT, "User-Agent": "AI-Workforce-Academy-verifier/1.0"},
        )
        response = connection.getresponse()
        if 300 <= response.status < 400:
            raise FetchRefused(
                gettext(
                    "%(what)s at %(url)s answered with a redirect (HTTP %(status)d); redirects are not followed.",
                    what=what,
                    url=url[:200],
                    status=response.status,
                )
            )
        if response.status != 200:
            raise FetchRefused(
                gettext(
                    "%(what)s at %(url)s answered HTTP %(status)d.", what=what, url=url[:200], status=response.status
                )
            )
        declared = response.getheader("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BYTES:
            raise _too_large(what)
        body = response.read(MAX_BYTES + 1)
        if len(body) > MAX_BYTES:
            raise _too_large(what)
        if expired.is_set():  # cut short: what arrived is not the whole document
            raise OSError("deadline")
    except FetchRefused:
        raise
    except (OSError, http.client.HTTPException, ValueError) as error:
        if expired.is_set() or time.monotonic() >= deadline - 0.01:
            raise FetchRefused(
                gettext("%(what)s at %(url)s did not arrive within 2 seconds.", what=what, url=url[:200])
            ) from None
        if isinstance(error, ssl.SSLError):
            raise FetchRefused(
                gettext(
                    "%(what)s at %(url)s: the secure connection failed (%(error)s).",
                    what=what,
                    url=url[:200],
                    error=error.__class__.__name__,
                )
            ) from None
        raise FetchRefused(
            gettext(
                "%(what)s at %(url)s could not be fetched (%(error)s).",
                what=what,
                url=url[:200],
                error=error.__class__.__name__,
            )
        ) from None
    finally:
        watchdog.cancel()
        connection.close()
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FetchRefused(gettext("%(what)s at %(url)s is not JSON.", what=what, url=url[:200])) from None


def _too_large(what: str) -> FetchRefused:
    return FetchRefused(
        gettext("%(what)s is larger than %(size)d KB; it was not read.", what=what, size=MAX_BYTES // 1024)
    )


def _cut(connection: _PinnedConnection, expired: threading.Event) -> None:
    expired.set()
    sock = connection.raw_socket
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing left to cut
            sock.shutdown(socket.SHUT_RDWR)
