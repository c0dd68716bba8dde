"""The status lists as served: the signed JSON and its gzip kept per app process with a strong ETag, and a change
stamp that tells every app server, without asking the database, that it must look again.

A status list's bits change only when a certificate row changes (revoked, reinstated, suspended, issued into a
slot) and its signed copy only when a list row is re-signed. Any commit that wrote a ``Certificate`` or a
``StatusList`` bumps the stamp once it has committed. The stamp lives in Redis when the rate limiter uses Redis
(the store every app server already shares), else in a file in the instance folder, mapped into memory (shared by
every process on the machine, which is what a memory rate limiter means). A request reads the stamp: unchanged
since its copy was checked, the copy is served with no database work; changed (or unreadable), the stored list's
``updated_at`` is read, as every request did before, and the copy rebuilt when it moved. Whatever the stamp says,
the bits are recomputed from the certificates at most once per ttl, so a list whose re-signing failed catches up.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import mmap
import os
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import chain

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.database import utcnow
from core.extensions import db
from credentials import openbadges
from credentials.identity import issuer
from credentials.models import Certificate, StatusList

STAMP_KEY = "awa/status-lists/stamp"
_WATCHED = (Certificate, StatusList)


class _FileStamp:
    """A random token in a small file, mapped into memory: a read is a memory read, no system call; a bump writes a
    new token in place, which every process mapping the file sees at once (one page cache). A read torn by a
    concurrent bump is a token nobody wrote: it only makes that request ask the database."""

    SIZE = 16

    def __init__(self, path: str) -> None:
        self.path = path
        self._map: mmap.mmap | None = None

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if os.fstat(descriptor).st_size < self.SIZE:  # new (or cut short): give it a token
                    os.pwrite(descriptor, secrets.token_bytes(self.SIZE), 0)
                self._map = mmap.mmap(descriptor, self.SIZE)
            finally:
                os.close(descriptor)
        return self._map

    def read(self) -> bytes:
        return self._mapped()[: self.SIZE]

    def bump(self) -> None:
        self._mapped()[: self.SIZE] = secrets.token_bytes(self.SIZE)


class _RedisStamp:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2)

    def read(self) -> bytes:
        return self.client.get(STAMP_KEY) or b""

    def bump(self) -> None:
        self.client.set(STAMP_KEY, secrets.token_hex(16))


def _stamp(app: Flask):
    stamp = app.extensions.get("status_list_stamp")
    if stamp is None:
        uri = app.config["RATELIMIT_STORAGE_URI"] or ""
        if uri.startswith(("redis://", "rediss://")):
            stamp = _RedisStamp(uri)
        else:
            stamp = _FileStamp(os.path.join(app.instance_path, "status-lists.stamp"))
        app.extensions["status_list_stamp"] = stamp
    return stamp


def read_stamp(app: Flask) -> bytes | None:
    """The current stamp, or None when it cannot be read (then the database is asked)."""
    try:
        return _stamp(app).read()
    except Exception:  # Redis away, a file system error: fall back to the database, never fail the request
        logging.getLogger(__name__).exception("could not read the status-list stamp")
        return None


def bump_stamp(app: Flask) -> None:
    try:
        _stamp(app).bump()
    except Exception:
        # the other app servers then notice within the ttl, as before the stamp existed
        logging.getLogger(__name__).exception("could not bump the status-list stamp")


@event.listens_for(Session, "after_flush")
def _note_writes(session, flush_context) -> None:
    if not session.info.get("status_lists_changed") and any(
        isinstance(thing, _WATCHED) for thing in chain(session.new, session.dirty, session.deleted)
    ):
        session.info["status_lists_changed"] = True


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_writes(state) -> None:
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete) and mapper is not None and mapper.class_ in _WATCHED:
        state.session.info["status_lists_changed"] = True


@event.listens_for(Session, "after_commit")
def _bump_after_commit(session) -> None:
    if session.info.pop("status_lists_changed", False) and has_app_context():
        bump_stamp(current_app._get_current_object())


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session, previous_transaction) -> None:
    session.info.pop("status_lists_changed", None)


@dataclass(frozen=True)
class ServedList:
    """One status list as served: the signed JSON, its gzip, its ETag, the stored ``updated_at`` it was built
    from, when its bits were last checked, and the stamp it was last checked under."""

    updated_at: datetime
    checked_at: float
    stamp: bytes | None
    body: bytes
    gzipped: bytes
    etag: str
    # a suspension in the list ends then: its bits change with no write, so no stamp moves (openbadges.next_change)
    changes_at: datetime | None = None


def served_list(list_id: int) -> ServedList:
    """The list as served now. Raises LookupError (no such list) or keys.KeyError_ (it must be signed and the
    key is missing); commits when it (re-)signed the list."""
    app = current_app._get_current_object()
    lists: dict[int, ServedList] = app.extensions.setdefault("served_status_lists", {})
    stamp = read_stamp(app)  # before the database: a change committed after this read bumps it again
    cached = lists.get(list_id)
    now = utcnow()
    fresh = (
        cached is not None
        and time.monotonic() - cached.checked_at < openbadges.STATUS_TTL_SECONDS
        and (cached.changes_at is None or now < cached.changes_at)
    )
    if fresh and stamp is not None and cached.stamp == stamp:
        return cached
    stored = db.session.scalar(select(StatusList.updated_at).where(StatusList.id == list_id))
    if stored is None:
        raise LookupError(list_id)
    if fresh and cached.updated_at == stored:
        lists[list_id] = cached = replace(cached, stamp=stamp)
        return cached
    document = openbadges.signed_status_list(list_id, issuer(), now=now)  # re-signs only if bits changed
    changes_at = openbadges.next_change(db.session.get(StatusList, list_id), now)
    db.session.commit()
    body = json.dumps(document, separators=(",", ":")).encode()
    cached = ServedList(
        changes_at=changes_at,
        updated_at=db.session.scalar(select(StatusList.updated_at).where(StatusList.id == list_id)),
        checked_at=time.monotonic(),
        stamp=stamp,
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        etag=hashlib.sha256(body).hexdigest()[:32],
    )
    lists[list_id] = cached
    return cached
