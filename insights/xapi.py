"""xAPI 1.0.3 statements for learning events: ADL verbs, account actors (never an email), stable activity IRIs.

Statements are written in the same transaction as the event (one INSERT before the commit: ``record_many``), so a
rolled-back request records nothing. ``forward`` sends unsent statements to a Learning Record Store with PUT
?statementId= (idempotent at the LRS too) and marks each one sent, so none is sent twice.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Insert, Join, Table, event, insert, select
from sqlalchemy.orm import Session

from core.extensions import db
from insights.models import XapiStatement

VERBS = {
    "registered": "http://adlnet.gov/expapi/verbs/registered",
    "completed": "http://adlnet.gov/expapi/verbs/completed",
    "answered": "http://adlnet.gov/expapi/verbs/answered",
    "passed": "http://adlnet.gov/expapi/verbs/passed",
    "failed": "http://adlnet.gov/expapi/verbs/failed",
    "earned": "http://id.tincanapi.com/verb/earned",
}
ACTIVITY_TYPES = {
    "course": "http://adlnet.gov/expapi/activities/course",
    "lesson": "http://adlnet.gov/expapi/activities/lesson",
    "assessment": "http://adlnet.gov/expapi/activities/assessment",
    "certificate": "https://w3id.org/xapi/cmi5/activitytype/credential",
}


def iso_duration(seconds: float) -> str:
    """ISO 8601 duration, e.g. PT1H2M3S."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + f"{secs}S"


def statement(
    *,
    base_url: str,
    user_id: int,
    verb: str,
    activity_iri: str,
    activity_type: str,
    name: str,
    now: datetime,
    result: dict | None = None,
    parent_iri: str | None = None,
) -> dict:
    body = {
        "id": str(uuid.uuid4()),
        "version": "1.0.3",
        "actor": {"objectType": "Agent", "account": {"homePage": base_url, "name": f"learner-{user_id}"}},
        "verb": {"id": VERBS[verb], "display": {"en-US": verb}},
        "object": {
            "objectType": "Activity",
            "id": activity_iri,
            "definition": {"type": ACTIVITY_TYPES[activity_type], "name": {"en-US": name}},
        },
        "timestamp": now.isoformat().replace("+00:00", "Z"),
    }
    if result:
        body["result"] = result
    if parent_iri:
        body["context"] = {"contextActivities": {"parent": [{"objectType": "Activity", "id": parent_iri}]}}
    return body


def record(*, user_id: int | None, verb: str, now: datetime, **fields) -> dict:
    """Build a statement (see ``statement`` for the fields) and write it in the current transaction (the caller
    commits; a rollback, of a savepoint too, drops it). Returns the statement's body."""
    return record_many([dict(user_id=user_id, verb=verb, now=now, **fields)])[0]


def record_many(events: list[dict]) -> list[dict]:
    """``record`` for several statements (each a dict of ``statement``'s fields). Returns the bodies.

    The rows are kept with the session and written by one Core INSERT for the whole transaction (``write_pending``):
    just before it commits (a savepoint's release too), or before the session reads xapi_statements. A rollback
    drops the rows recorded inside what it rolled back (a savepoint: only those). The submission that completes a
    course records four statements (answered, passed, completed, earned) from three receivers: one INSERT, where
    each receiver sent its own; and no ORM unit of work (which cost more CPU than the statement on every lesson
    completion of the load test)."""
    bodies = [statement(**fields) for fields in events]
    session = db.session()
    scope = session.get_nested_transaction() or session.get_transaction()
    if scope is None:
        session.connection()  # begins the transaction the rows belong to
        scope = session.get_transaction()
    session.info.setdefault(_PENDING, []).extend(
        (
            scope,
            {
                "id": body["id"],
                "timestamp": fields["now"],
                "verb": fields["verb"],
                "user_id": fields["user_id"],
                "statement": body,
                "attempts": 0,
            },
        )
        for body, fields in zip(bodies, events, strict=True)
    )
    return bodies


_INSERT = insert(XapiStatement.__table__)  # built once
_PENDING = "xapi_pending"


def write_pending(session: Session | None = None) -> None:
    """Write the statements recorded in this transaction and not written yet (one INSERT; the caller commits)."""
    session = session or db.session()
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.connection().execute(_INSERT, [row for _, row in pending])


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction) -> None:
    pending = session.info.get(_PENDING)
    if not pending:
        return

    def rolled_back(scope) -> bool:
        while scope is not None:
            if scope is previous_transaction:
                return True
            scope = scope.parent
        return False

    kept = [(scope, row) for scope, row in pending if not rolled_back(scope)]
    if kept:
        session.info[_PENDING] = kept
    else:
        session.info.pop(_PENDING, None)


@event.listens_for(Session, "do_orm_execute")
def _write_before_reading(state) -> None:
    # only while rows wait (between a learning event and its commit): a statement that reads xapi_statements sees them
    if not state.session.info.get(_PENDING):
        return
    if _may_read_statements(state.statement):
        write_pending(state.session)


def _may_read_statements(statement) -> bool:
    """Whether a statement can see xapi_statements: a SELECT whose FROM is only other tables (and joins of them)
    cannot, nor an INSERT into another table (the insights rollups' upserts); anything else (text, a subquery,
    UPDATE, DELETE) is taken to."""
    if isinstance(statement, Insert):
        return statement.table.name == XapiStatement.__tablename__
    final_froms = getattr(statement, "get_final_froms", None)
    if final_froms is None:
        return True
    for from_ in final_froms():
        for part in from_._from_objects:
            if isinstance(part, Join):
                continue  # (its tables are among the parts too)
            if not isinstance(part, Table) or part.name == XapiStatement.__tablename__:
                return True
    return False


def export_lines(start: datetime, end: datetime):
    """JSON lines of the statements with start <= timestamp < end, oldest first (streamed)."""
    stmt = (
        select(XapiStatement.statement)
        .where(XapiStatement.timestamp >= start, XapiStatement.timestamp < end)
        .order_by(XapiStatement.timestamp, XapiStatement.id)
        .execution_options(yield_per=1000)
    )
    for body in db.session.scalars(stmt):
        yield json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n"


def _send(endpoint: str, username: str, password: str, body: dict, timeout: float) -> int:
    if not endpoint.startswith(("https://", "http://")):
        raise ValueError("the LRS endpoint must be an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        endpoint.rstrip("/") + "/statements?statementId=" + body["id"],
        data=json.dumps(body).encode(),
        method="PUT",
        headers={
            "Content-Type": "application/json",
            "X-Experience-API-Version": "1.0.3",
            "Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured LRS URL)
        return response.status


def forward(
    *,
    endpoint: str,
    username: str,
    password: str,
    now: Callable[[], datetime],
    batch: int = 500,
    retries: int = 3,
    backoff: float = 0.5,
    send=_send,
    sleep=time.sleep,
) -> tuple[int, int]:
    """Send unsent statements; each is committed as sent right after the LRS accepts it. Returns (sent, failed).

    A 409 (the LRS already has this id) counts as sent. Failures are retried with backoff, then left for the
    next run with the error recorded.
    """
    sent = failed = 0
    rows = list(
        db.session.scalars(
            select(XapiStatement)
            .where(XapiStatement.sent_at.is_(None))
            .order_by(XapiStatement.timestamp, XapiStatement.id)
            .limit(batch)
        )
    )
    for row in rows:
        error = None
        for attempt in range(retries):
            try:
                status = send(endpoint, username, password, row.statement, 10.0)
                if 200 <= status < 300 or status == 409:
                    error = None
                    break
                error = f"LRS answered {status}"
            except urllib.error.HTTPError as http_error:
                if http_error.code == 409:
                    error = None
                    break
                error = f"LRS answered {http_error.code}"
            except (urllib.error.URLError, OSError, TimeoutError, ValueError) as network_error:
                error = f"network: {network_error}"
            sleep(backoff * 2**attempt)
        row.attempts += 1
        if error is None:
            row.sent_at, row.last_error = now(), None
            sent += 1
        else:
            row.last_error = error
            failed += 1
        db.session.commit()  # one statement at a time: a crash never re-sends what was acknowledged
    return sent, failed
