"""People per course group for the insights dashboard, from insights_people_days (insights.models.PeopleDay).

The dashboard counts people, not enrollments: a learner in three courses of one goal is one participant of that
goal. For each measure, order a person's qualifying enrollments by (UTC day, course id); the person's row for one
enrollment holds its day, its course and the courses that come after it (``later``). In any group of courses G
the person has exactly one enrollment whose course is in G and whose ``later`` misses G: their last one in G. So

    people of G since day s = sum of n over rows with day >= s, course in G, later disjoint from G

and summed rows (grouped by day, course, later) replace one pass over every enrollment. Measures:

- ``enrolled``: enrollments by enrolled day; ``completed``: the completed ones, by enrolled day;
- ``credentialed``: enrollments with a certificate for the course, by enrolled day; a certificate counts for a
  credential window of W days when awarded_at <= enrolled_at + W days, so which enrollments qualify (and so
  ``later``) depends on W: each row holds for w_lo <= W < w_hi;
- ``active``: enrollments by the UTC day of their last activity. "Active in the last 30 days" starts at
  now - 30 days, inside a day: rows of later days come from the rollup, people whose last row in G falls on that
  first day are read from enrollments (that day's activity only).

These answer periods that start on a whole day and run past the latest enrollment (the dashboard's default and
any "from ... to today"); reports.py reads enrollments for a period ending earlier.

Triggers (migration 0023b) mark changed users in insights_people_dirty on every write path; ``settle`` recomputes
those users' rows before the transaction commits (a Session hook below) and subtracts the rows they had, which
insights_people_states remembers. ``rebuild`` recomputes everything (after a bulk load with the triggers off).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime

from sqlalchemy import and_, bindparam, cast, delete, event, insert, literal_column, null, select, union_all
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from core.extensions import db
from courses.models import Enrollment
from courses.services import enrollment_completed
from credentials.models import Certificate
from insights import dashboard_cache
from insights.models import PeopleDay, PeopleDirty, PeopleState

OPEN = 1_000_000_000  # w_hi of a credential-window band with no upper end
DAY_US = 86_400 * 1_000_000
CHUNK = 2000


def lag_days(enrolled_at: datetime, awarded_at: datetime) -> int:
    """The smallest whole number of days W with awarded_at <= enrolled_at + W days (exact to the microsecond)."""
    lag = awarded_at - enrolled_at
    microseconds = (lag.days * 86_400 + lag.seconds) * 1_000_000 + lag.microseconds
    return -(-microseconds // DAY_US)


def rows_for(state: list) -> Counter:
    """One person's rows: (measure, day, course id, later, w_lo, w_hi) → 1.

    ``state`` lists their enrollments as [course id, enrolled day, completed, lag days or None, active day]
    (days as ISO strings; lag: lag_days of the course certificate, None without one)."""
    rows: Counter = Counter()
    for measure, entries in (
        ("enrolled", [(enrolled, course) for course, enrolled, _, _, _ in state]),
        ("completed", [(enrolled, course) for course, enrolled, done, _, _ in state if done]),
        ("active", [(active, course) for course, _, _, _, active in state]),
    ):
        entries.sort()
        for i, (day, course) in enumerate(entries):
            later = ",".join(str(c) for c in sorted(c for _, c in entries[i + 1 :]))
            rows[(measure, day, course, later, 0, 0)] += 1
    credentials = sorted((enrolled, course, lag) for course, enrolled, _, lag, _ in state if lag is not None)
    for i, (day, course, lag) in enumerate(credentials):
        after = credentials[i + 1 :]
        # the window must reach this certificate; each later certificate joins ``later`` once W reaches it
        bounds = sorted({lag, *(other for _, _, other in after if other > lag)})
        for k, low in enumerate(bounds):
            high = bounds[k + 1] if k + 1 < len(bounds) else OPEN
            later = ",".join(str(c) for c in sorted(c for _, c, other in after if other <= low))
            rows[("credentialed", day, course, later, low, high)] += 1
    return rows


def _state(course_id, enrolled_at, completed_at, active_at, awarded_at) -> list:
    return [
        course_id,
        enrolled_at.date().isoformat(),
        completed_at is not None,
        None if awarded_at is None else lag_days(enrolled_at, awarded_at),
        active_at.date().isoformat(),
    ]


_INPUT_COLUMNS = (
    Enrollment.user_id,
    Enrollment.course_id,
    Enrollment.enrolled_at,
    Enrollment.completed_at,
    Enrollment.last_activity_at,
    Certificate.awarded_at,
)
_HELD = and_(Certificate.user_id == Enrollment.user_id, Certificate.course_id == Enrollment.course_id)


def _inputs(user_ids, session=None) -> dict[int, list]:
    """Each user's state (see rows_for) from their enrollments and course certificates now."""
    session = session or db.session
    states: dict[int, list] = defaultdict(list)
    for user_id, *row in session.execute(
        select(*_INPUT_COLUMNS).outerjoin(Certificate, _HELD).where(Enrollment.user_id.in_(user_ids))
    ):
        states[user_id].append(_state(*row))
    for state in states.values():
        state.sort()
    return states


def _typed_null(column):
    return cast(null(), column.type)


# built once: the states settle remembers (kind 's') and the enrollments they are recomputed from (kind 'e') of the
# users in ``users`` (an expanding IN), in one statement instead of two
_USERS = bindparam("users", expanding=True)
_STATES_AND_INPUTS = union_all(
    select(
        literal_column("'s'").label("kind"),
        PeopleState.user_id,
        PeopleState.state,
        *(_typed_null(column) for column in _INPUT_COLUMNS[1:]),
    ).where(PeopleState.user_id.in_(_USERS)),
    select(literal_column("'e'"), Enrollment.user_id, _typed_null(PeopleState.state), *_INPUT_COLUMNS[1:])
    .outerjoin(Certificate, _HELD)
    .where(Enrollment.user_id.in_(_USERS)),
)


def _before_and_now(user_ids, session) -> tuple[dict[int, list], dict[int, list]]:
    """(the remembered states, the states now) of these users, from one statement."""
    before: dict[int, list] = {}
    now: dict[int, list] = defaultdict(list)
    for kind, user_id, state, *row in session.connection().execute(_STATES_AND_INPUTS, {"users": list(user_ids)}):
        if kind == "s":
            before[user_id] = state
        else:
            now[user_id].append(_state(*row))
    for state in now.values():
        state.sort()
    return before, now


def _add(delta: Counter, session=None) -> None:
    """Add nonzero counts to insights_people_days (one executemany upsert)."""
    values = [
        {"measure": m, "day": date.fromisoformat(d), "course_id": c, "later": later, "w_lo": lo, "w_hi": hi, "n": n}
        # in key order: two transactions adding to the same rows lock them in the same order (no deadlock)
        for (m, d, c, later, lo, hi), n in sorted(delta.items())
        if n
    ]
    if not values:
        return
    session = session or db.session
    session.execute(_built(session, "add"), values)


def _built(session, which: str):
    """The upserts of ``_add`` and ``settle``, built once per dialect (every completion runs them)."""
    dialect = session.get_bind().dialect.name
    statements = _BUILT.get(dialect)
    if statements is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        days, states = upsert(PeopleDay.__table__), upsert(PeopleState.__table__)
        statements = _BUILT[dialect] = {
            "add": days.on_conflict_do_update(
                index_elements=[c.name for c in PeopleDay.__table__.primary_key.columns],
                set_={"n": PeopleDay.__table__.c.n + days.excluded.n},
            ),
            "states": states.on_conflict_do_update(index_elements=["user_id"], set_={"state": states.excluded.state}),
        }
    return statements[which]


_BUILT: dict[str, dict] = {}


def marked(session: Session | None = None) -> list[int]:
    """The users marked dirty, locked (a transaction that changes one of them meanwhile waits at its own mark)."""
    session = session or db.session
    session.flush()  # as the ORM query this was would autoflush
    return list(session.connection().scalars(_MARKED))


# built once: every transaction that writes enrollments runs it before committing
_MARKED = select(PeopleDirty.__table__.c.user_id).order_by(PeopleDirty.__table__.c.user_id).with_for_update()
# the same rows taken (locked in the same order, by the subquery) and deleted in one statement: settling them is
# what follows in this transaction, so their marks go now rather than in a DELETE at the end
_TAKE_MARKED = (
    delete(PeopleDirty.__table__)
    .where(PeopleDirty.__table__.c.user_id.in_(_MARKED))
    .returning(PeopleDirty.__table__.c.user_id)
)


def take_marked(session: Session | None = None) -> list[int]:
    """The users marked dirty, their marks deleted (their rows locked first, in key order, as ``marked`` locks
    them: a transaction changing one of them meanwhile waits at its own mark until this one commits). For a caller
    that settles them in this transaction (flushes first; the caller commits)."""
    session = session or db.session
    session.flush()
    return sorted(session.connection().scalars(_TAKE_MARKED))


def settle(
    session: Session | None = None,
    user_ids: list[int] | None = None,
    folded: tuple[int, int] = (0, 0),
    *,
    taken: bool = False,
) -> int:
    """Bring the rows of every user marked dirty (``marked``, unless given) up to date, in the current transaction
    (the caller commits).

    A transaction that changes one of these users meanwhile waits at its own mark, then sees this one's result.
    When it settled anyone, bumps the dashboard cache's counters (insights/dashboard_cache.py): people active
    always; people enrolled, completed or credentialed when their rows changed; enrollments started and
    certificates when ``folded`` (rollups.fold's counts, this transaction's) says their day rows changed, or always
    on SQLite, whose triggers change the day rows in place (every such change marks a user). ``taken``: the
    ``user_ids`` came from ``take_marked`` (their marks are gone already). Returns the number of users settled."""
    session = session or db.session
    if user_ids is None:
        user_ids, taken = take_marked(session), True
    scopes = {dashboard_cache.SCOPE}
    if session.get_bind().dialect.name != "postgresql":
        scopes |= {dashboard_cache.STARTED, dashboard_cache.CERTIFICATES}
    if folded[0]:
        scopes.add(dashboard_cache.STARTED)
    if folded[1]:
        scopes.add(dashboard_cache.CERTIFICATES)
    for i in range(0, len(user_ids), CHUNK):
        chunk = user_ids[i : i + CHUNK]
        before, now = _before_and_now(chunk, session)
        delta: Counter = Counter()
        changed = [user_id for user_id in chunk if before.get(user_id) != now.get(user_id)]
        for user_id in changed:
            delta.update(rows_for(now.get(user_id, [])))
            delta.subtract(rows_for(before.get(user_id, [])))
        if any(n and key[0] != "active" for key, n in delta.items()):
            scopes.add(dashboard_cache.PERIOD)
        _add(delta, session)
        gone = [user_id for user_id in changed if user_id not in now]
        if gone:  # no enrollment left (a deleted account): nothing to remember
            session.execute(delete(PeopleState).where(PeopleState.user_id.in_(gone)))
        states = [{"user_id": user_id, "state": now[user_id]} for user_id in changed if user_id in now]
        if states:  # one upsert, where a DELETE and an INSERT replaced the remembered states
            session.execute(_built(session, "states"), states)
        if not taken:
            session.execute(delete(PeopleDirty).where(PeopleDirty.user_id.in_(chunk)))
    if user_ids:
        # last, after the people rows (locked in key order): every writer takes the counters at the same point, in
        # the same order, and holds them only while committing
        dashboard_cache.bump(session.connection(), scopes)
    return len(user_ids)


def rebuild() -> int:
    """Recompute every person's rows from enrollments and certificates (flushes; the caller commits).

    Returns the number of rows in insights_people_days."""
    dashboard_cache.bump(db.session.connection())
    db.session.execute(delete(PeopleDay))
    db.session.execute(delete(PeopleState))
    db.session.execute(delete(PeopleDirty))
    user_ids = list(db.session.scalars(select(Enrollment.user_id).distinct().order_by(Enrollment.user_id)))
    totals: Counter = Counter()
    for i in range(0, len(user_ids), CHUNK * 5):
        states = _inputs(user_ids[i : i + CHUNK * 5])
        for state in states.values():
            totals.update(rows_for(state))
        db.session.execute(insert(PeopleState.__table__), [{"user_id": u, "state": s} for u, s in states.items()])
    _add(totals)
    return len(totals)


# ---- keeping the rows current ------------------------------------------------------------------------------
# A statement writing enrollments or certificates (or deleting users, whose enrollments go by cascade) notes it on
# its connection; before such a transaction commits, the users its triggers marked are settled. Cheap when nothing
# of the kind was written: no query at all.

_WATCHED = ("enrollments", "certificates")


@event.listens_for(Pool, "checkin")
def _forget_writes(_dbapi_connection, record) -> None:
    # the note lives in the pooled connection's info, which outlives the checkout: a transaction that rolled back
    # (or a write outside the ORM session, whose rows the dashboard's counters statement finds unsettled anyway)
    # must not leave it to the next one, which would then look for users to settle for nothing
    if record is not None:
        record.info.pop("insights_people", None)


# a statement that starts with WITH writes a watched table when one of its parts does (credentials.services writes
# a certificate and its event in one such statement on PostgreSQL)
_WRITES_WATCHED = re.compile(
    r"\b(?:INSERT INTO|UPDATE|DELETE FROM) (?:enrollments|certificates)\b|\bDELETE FROM users\b"
)


@event.listens_for(Engine, "before_cursor_execute")
def _note_writes(conn, _cursor, statement, _parameters, context, _executemany) -> None:
    head = statement.lstrip()[:6].upper()
    if head.startswith("WITH"):
        if _WRITES_WATCHED.search(statement):
            conn.info["insights_people"] = True
        return
    if head in ("INSERT", "UPDATE", "DELETE") and (
        any(name in statement for name in _WATCHED) or (head == "DELETE" and "users" in statement)
    ):
        moved = context.execution_options.get("activity_moved") if context is not None else None
        if moved is not None and activity_marks_nobody(*moved):
            return
        conn.info["insights_people"] = True


@enrollment_completed.connect
def _completion_noted(enrollment, **_) -> None:
    # a completion marks its user (the triggers watch completed_at), also when the UPDATE that wrote it moved the
    # last activity within a day and so was not noted above (courses.services.submit_attempt)
    db.session.connection().info["insights_people"] = True


def activity_marks_nobody(before: datetime, after: datetime) -> bool:
    """Whether an UPDATE that moves only an enrollment's last activity from ``before`` to ``after`` (both exact:
    read under the row's lock) fires none of the marking triggers (migrations 0023b, 0030): they mark when the
    activity's UTC day changes, when it moves back, or when the old one is more than 29 days old by the database's
    clock. Forward within one UTC day leaves only the last condition, which would need the database's clock 29
    days ahead of the app's. Such an update (a lesson completed on the day of the learner's previous step) then
    needs no look for users to settle before the commit."""
    before, after = _utc(before), _utc(after)
    return after >= before and after.date() == before.date()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@event.listens_for(Session, "after_begin")
def _remember_connection(session: Session, _transaction, connection) -> None:
    session.info.setdefault("insights_connections", set()).add(connection)


@event.listens_for(Session, "after_transaction_end")
def _forget_connections(session: Session, transaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended (a commit popped them already)
        session.info.pop("insights_connections", None)


@event.listens_for(Session, "before_commit")
def _settle_before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the transaction around it settles once, when it commits
    session.flush()  # commit() would flush only after this hook; what it writes must be marked and settled now
    connections = [c for c in session.info.pop("insights_connections", ()) if not c.closed]
    if any(c.info.pop("insights_people", False) for c in connections):
        user_ids = take_marked(session)
        if not user_ids:
            return  # most often: activity within the day (a lesson completion); no day rollup changed either
        from insights import rollups

        # every change the day-rollup triggers appended came with a mark (migrations 0023b, 0030): fold them too.
        # The day rows first, then the people rows, then the counter: every writer locks them in this order
        folded = rollups.fold(session.connection())
        settle(session, user_ids, folded, taken=True)
