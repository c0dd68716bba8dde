"""A real SMTP server on loopback (aiosmtpd), started by the test, with switchable misbehaviour."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Handler:
    """Records every message it accepted. ``mode``: accept | refuse (451 at RCPT) | stall (no answer at RCPT)."""

    mode: str = "accept"
    accepted: list = field(default_factory=list)
    rcpt_seen: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    data_delay: float = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_seen.set()
        if self.mode == "refuse":
            return "451 4.3.0 Try again later"
        if self.mode == "stall":
            # hold the client mid-transaction until the test releases us (or the client gives up)
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 Too late"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self.accepted.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def messages(self, to: str | None = None) -> list:
        return [m for _, rcpts, m in self.accepted if to is None or to in rcpts]

    def wait_for(self, count: int, timeout: float = 20.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages()


class SMTPServer:
    def __init__(self) -> None:
        self.handler = Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10)

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.handler.release.set()
        self.controller.stop()


@contextmanager
def app_mailing_to(app, monkeypatch, timeout: float = 10) -> Iterator[Handler]:
    """A server started here, and the app's mail settings pointed at it (plain SMTP) for the test.

    ``timeout`` is the app's seconds per SMTP step. A loopback answer takes milliseconds, but with six test processes
    on two cores a 1 s step could time out after the server had already accepted the message, and the retry then
    delivered it twice (SMTP is at-least-once; the refusal test saw two copies). Tests of a stalled server set a
    short timeout for the stalled attempt only."""
    with SMTPServer() as server:
        for key, value in {
            "MAIL_BACKEND": "smtp",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": server.port,
            "MAIL_USE_TLS": False,
            "MAIL_TIMEOUT": timeout,
        }.items():
            monkeypatch.setitem(app.config, key, value)
        yield server.handler
