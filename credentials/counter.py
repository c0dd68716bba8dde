"""How often a certificate was verified: counted at most once per client and day, written in batches."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from datetime import datetime, timedelta

from flask import current_app
from flask_limiter.util import get_remote_address
from limits.storage import MemoryStorage
from sqlalchemy import bindparam, update

from core.extensions import db, limit_storage
from credentials.models import Certificate


class VerificationCounter:
    """Counts verifications per certificate in memory and writes them in batches.

    A verification only notes (keyed client digest, certificate, time) in memory; every ``batch`` notes or
    ``seconds`` seconds the notes are reduced to one per client, certificate and day (see ``count_verification``)
    and the counts reach the database (at most that many are lost if the process dies). No IP or requester data
    is kept.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[str, int, datetime]] = []
        self._lock = threading.Lock()
        self._since = time.monotonic()
        # with the rate limiter's memory storage (one process): the client digests counted today
        self._seen: set[str] = set()
        self._seen_day = None

    def note(self, client: str, certificate_id: int, now: datetime, *, batch: int, seconds: float, engine=None) -> None:
        """Note one verification; ``engine`` writes a due batch (default: the app's, which needs an app context)."""
        with self._lock:
            self._pending.append((client, certificate_id, now))
            if len(self._pending) < batch and time.monotonic() - self._since < seconds:
                return
            pending, self._pending, self._since = self._pending, [], time.monotonic()
        self._write(pending, engine)

    def _write(self, pending: list[tuple[str, int, datetime]], engine=None) -> None:
        # Its own transaction, so a request's rollback never loses or doubles counts. Rows are updated in
        # id order so two workers flushing at once cannot deadlock. A failed write drops these counts
        # rather than failing the verification that triggered it.
        try:
            counts: dict[int, list] = {}
            for _client, certificate_id, at in self._first_today(pending):
                entry = counts.setdefault(certificate_id, [0, at])
                entry[0] += 1
                entry[1] = max(entry[1], at)
            if counts:
                VerificationCounter._update(dict(sorted(counts.items())), engine or db.engine)
        except Exception:  # the database, Redis or the limiter's storage: never fail the verification itself
            logging.getLogger(__name__).exception("could not write %d verification counts", len(pending))

    def _first_today(self, pending: list[tuple[str, int, datetime]]) -> list[tuple[str, int, datetime]]:
        """The notes whose client had not yet verified that certificate that day (one per client and day).

        The digests are kept in the rate limiter's storage until the day ends (Redis: shared by every app
        server, one pipelined round trip per batch), or in this process with its memory storage; without a
        limiter every note counts."""
        unique: dict[str, tuple[str, int, datetime]] = {}
        for note in pending:
            unique.setdefault(note[0], note)
        storage = limit_storage()
        if storage is None:
            return list(pending)
        if isinstance(storage, MemoryStorage):
            with self._lock:
                day = max(n[2] for n in pending).date()
                if day != self._seen_day:
                    self._seen, self._seen_day = set(), day
                fresh = [n for client, n in unique.items() if client not in self._seen]
                self._seen.update(unique)
            return fresh
        keys = list(unique)
        ttl = [_until_midnight(unique[k][2]) for k in keys]
        connection = getattr(storage, "get_connection", None)
        if connection is not None:
            pipe = connection().pipeline(transaction=False)
            for key, seconds in zip(keys, ttl, strict=True):
                pipe.set(f"awa/verified/{key}", 1, nx=True, ex=seconds)
            first = pipe.execute()
        else:
            first = [storage.incr(f"awa/verified/{k}", s) == 1 for k, s in zip(keys, ttl, strict=True)]
        return [unique[k] for k, new in zip(keys, first, strict=True) if new]

    @staticmethod
    def _update(pending: dict[int, list], engine) -> None:
        with engine.begin() as connection:
            connection.execute(
                update(Certificate.__table__)
                .where(Certificate.__table__.c.id == bindparam("cid"))
                .values(
                    verification_count=Certificate.__table__.c.verification_count + bindparam("n"),
                    last_verified_at=bindparam("at"),
                ),
                [{"cid": cid, "n": n, "at": at} for cid, (n, at) in pending.items()],
            )

    def forget_clients(self) -> None:
        """Forget which clients were counted today in this process (what resetting a memory rate limiter does)."""
        with self._lock:
            self._seen, self._seen_day = set(), None

    def flush(self) -> None:
        with self._lock:
            pending, self._pending, self._since = self._pending, [], time.monotonic()
        if pending:
            self._write(pending)


verification_counter = VerificationCounter()


def _until_midnight(now: datetime) -> int:
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
    return max(1, int((midnight - now).total_seconds()))


def count_verification(certificate_id: int, now: datetime) -> None:
    """Count this request's verification of a certificate (see ``count_client``)."""
    count_client(current_app.config, get_remote_address(), certificate_id, now)


def count_client(cfg, address: str, certificate_id: int, now: datetime, engine=None) -> None:
    """Count a verification, at most once per client per certificate per UTC day (so reloads or a script
    cannot inflate "verified N times"). Clients are told apart by a keyed hash of their address, certificate
    and day; the address itself is never stored. Costs a hash and a list append: the once-a-day check and the
    write happen per batch (``VerificationCounter``)."""
    client = hmac.new(
        cfg["SECRET_KEY"].encode(), f"{address}|{certificate_id}|{now:%Y-%m-%d}".encode(), "sha256"
    ).hexdigest()[:32]
    verification_counter.note(
        client,
        certificate_id,
        now,
        batch=cfg["VERIFY_COUNT_BATCH"],
        seconds=cfg["VERIFY_COUNT_SECONDS"],
        engine=engine,
    )
