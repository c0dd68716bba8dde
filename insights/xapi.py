"""xAPI 1.0.3 statements for learning events: ADL verbs, account actors (never an email), stable activity IRIs.

Statements are written in the same transaction as the event (flush only), so a rolled-back request records
nothing. ``forward`` sends unsent statements to a Learning Record Store with PUT ?statementId= (idempotent at
the LRS too) and marks each one sent, so none is sent twice.
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

from sqlalchemy import insert, select

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
    """``record`` for several statements (each a dict of ``statement``'s fields) in one INSERT. Returns the bodies.

    A Core INSERT run at once rather than ORM objects flushed later: on every lesson completion and quiz
    submission of the load test the unit of work around one row cost more CPU than the statement itself."""
    bodies = [statement(**fields) for fields in events]
    db.session.connection().execute(
        _INSERT,
        [
            {
                "id": body["id"],
                "timestamp": fields["now"],
                "verb": fields["verb"],
                "user_id": fields["user_id"],
                "statement": body,
                "attempts": 0,
            }
            for body, fields in zip(bodies, events, strict=True)
        ],
    )
    return bodies


_INSERT = insert(XapiStatement.__table__)  # built once


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
