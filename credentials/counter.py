"""How often a certificate was verified: counted at most once per client and day, written in batches."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from datetime import datetime, timedelta

from flask import current_app
from flask_limiter.util import get_remote_address
from sqlalchemy import bindparam, update
from sqlalchemy.exc import SQLAlchemyError

from core.extensions import db, limit_storage
from credentials.models import Certificate


class VerificationCounter:
    """Counts verifications per certificate in memory and writes them in batches.

    A verification is then a plain indexed read; the counts reach the database every ``batch``
    verifications or ``seconds`` seconds (at most that many are lost if the process dies). No IP or
    requester data is kept.
    """

    def __init__(self) -> None:
        self._pending: dict[int, list] = {}
        self._lock = threading.Lock()
        self._since = time.monotonic()

    def note(self, certificate_id: int, now: datetime, *, batch: int, seconds: float) -> None:
        with self._lock:
            entry = self._pending.setdefault(certificate_id, [0, now])
            entry[0] += 1
            entry[1] = now
            due = sum(e[0] for e in self._pending.values()) >= batch or time.monotonic() - self._since >= seconds
            if not due:
                return
            pending, self._pending, self._since = self._pending, {}, time.monotonic()
        self._write(pending)

    @staticmethod
    def _write(pending: dict[int, list]) -> None:
        # Its own transaction, so a request's rollback never loses or doubles counts. Rows are updated in
        # id order so two workers flushing at once cannot deadlock. A failed write drops these counts
        # rather than failing the verification that triggered it.
        try:
            VerificationCounter._update(dict(sorted(pending.items())))
        except SQLAlchemyError:
            logging.getLogger(__name__).exception("could not write %d verification counts", len(pending))

    @staticmethod
    def _update(pending: dict[int, list]) -> None:
        with db.engine.begin() as connection:
            connection.execute(
                update(Certificate.__table__)
                .where(Certificate.__table__.c.id == bindparam("cid"))
                .values(
                    verification_count=Certificate.__table__.c.verification_count + bindparam("n"),
                    last_verified_at=bindparam("at"),
                ),
                [{"cid": cid, "n": n, "at": at} for cid, (n, at) in pending.items()],
            )

    def flush(self) -> None:
        with self._lock:
            pending, self._pending, self._since = self._pending, {}, time.monotonic()
        if pending:
            self._write(pending)


verification_counter = VerificationCounter()


def count_verification(certificate: Certificate, now: datetime) -> None:
    """Count a verification, at most once per client per certificate per UTC day (so reloads or a script
    cannot inflate "verified N times"). Clients are told apart by a keyed hash of their address, kept in the
    rate limiter's storage until the day ends; the address itself is never stored."""
    cfg = current_app.config
    client = hmac.new(
        cfg["SECRET_KEY"].encode(), f"{get_remote_address()}|{certificate.id}|{now:%Y-%m-%d}".encode(), "sha256"
    ).hexdigest()[:32]
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
    storage = limit_storage()
    if (
        storage is not None
        and storage.incr(f"awa/verified/{client}", max(1, int((midnight - now).total_seconds()))) > 1
    ):
        return
    verification_counter.note(certificate.id, now, batch=cfg["VERIFY_COUNT_BATCH"], seconds=cfg["VERIFY_COUNT_SECONDS"])
