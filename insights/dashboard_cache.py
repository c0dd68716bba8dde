"""The insights dashboard's answer, kept in each process and served for as long as it provably holds.

Why a cache and not a cheaper rollup: at 10,000 learners the per-person rollup (insights/people.py) holds about one
row per enrollment (53k rows: its ``later`` sets and days hardly repeat), so summing it costs the same as the data,
and a page view asks for the same report three times (the page and its two charts), again for each CSV and for the
next admin. The report changes only when its data does or when time moves it, and both can be known exactly:

- **Data.** Every write that can change a number marks a user in insights_people_dirty (triggers, migrations 0023b
  and 0030: enrollments, course certificates, a new day of activity, activity moved back or from more than 29
  days ago, revocation and expiry), and ``people.settle`` bumps the ``insights`` counter (a row of report_versions)
  in the same transaction, just before it commits. An entry is served only at the counter and content version
  (core/contentcache.py: titles, tags, courses) it was computed at, and only when no user is marked (a mark left
  by bulk SQL outside a session means unsettled data). The counter is read before the report is computed, so a
  write committing meanwhile makes the entry unreachable, never stale.
- **Time.** Only two numbers depend on the moment the report is judged at: people active in the last 30 days and
  certificates expiring in the next 60. Both change only when the moving window passes a stored timestamp, so
  the entry records when that next happens (``horizon``: the earliest activity still inside the 30 days, the
  earliest expiry after now and after now + 60 days) and is served for any moment before it: exactly the numbers
  ``reports.build`` gives at that moment, not the numbers of the moment it was computed.

Same-day activity (each lesson completion moves ``last_activity_at`` forward) marks nothing and bumps nothing:
a learner active within the last 29 days who is active again stays counted in every window an entry can be served
for (see the proof in migration 0030). So ordinary lesson completions cost nothing here.

**Parts.** Under steady writes the whole answer rarely survives until the next request, so it is also kept in
parts (``reports.build``'s ``remember``), each with its own counter, bumped only by the writes that change what
it reads: enrollments started in the period (``insights:started``: the enrollment day rows changed), certificates
(``insights:certificates``: certificate day rows, which also move with every revocation or expiry change),
people enrolled, completed or credentialed (``insights:period``: settle changed those rows) and people active in
the last 30 days (``insights``: anyone settled). On PostgreSQL ``rollups.fold`` counts the day changes a
transaction made; on SQLite the day rows change in place, so there every settled write bumps both day counters.
A learner's first activity of the day recomputes only the active people, a revocation the certificates and the
active people, an enrollment everything but the certificates. Each time-dependent part has its own horizon;
a whole entry is served until the earliest of its parts'. All counters are read in one statement before anything
is computed.

Entries live per process (no shared store): a hit costs one small statement (the counters, and whether any mark
or day change is left unsettled; the content version comes with the signed-in user), a miss one more, which reads
every part that changed together with its horizon (reports.build). Processes never serve each other's stale
entries, since the counters and marks live in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from flask import current_app
from sqlalchemy import bindparam, exists, func, or_, select

from core.contentcache import LocalStore, content_version
from core.database import UTCDateTime
from core.extensions import db
from courses.models import Enrollment
from credentials.models import Certificate
from insights.models import (
    PeopleDirty,
    ReportVersion,
    certificate_day_changes,
    enrollment_day_changes,
)
from insights.reports import MISSING

SCOPE = "insights"  # people active in the last 30 days: bumped whenever anyone was settled
PERIOD = "insights:period"  # people enrolled, completed, credentialed: their rows in insights_people_days changed
STARTED = "insights:started"  # insights_enrollment_days changed
CERTIFICATES = "insights:certificates"  # insights_certificate_days or a certificate's revocation or expiry changed
SCOPES = (SCOPE, CERTIFICATES, PERIOD, STARTED)  # in this order (sorted): every writer bumps them in the same order
# what each part of the report (reports.build's ``remember``) reads, and whether time alone can change it
SECTIONS = {
    "started": ((STARTED,), None),
    "certificates": ((CERTIFICATES,), "expiry"),
    "period": ((PERIOD,), None),
    "active": ((SCOPE,), "active"),
    "scan": (SCOPES, "active"),  # people straight from enrollments and certificates: everything
}
ACTIVE = timedelta(days=30)  # reports: "active in the last 30 days"
EXPIRING = timedelta(days=60)  # reports.EXPIRING_DAYS
ENTRIES = 64  # per process: periods and windows an admin may ask for
ONE_MICROSECOND = timedelta(microseconds=1)
T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    report: object  # reports.Report, shared read-only by every request of this process
    computed_at: datetime
    until: datetime | None  # served for computed_at <= now < until (None: no stored timestamp can move it)
    # what the views make from the report (the page's body and the charts per language, the CSV tables): made once
    made: dict = field(default_factory=dict)

    def remember(self, key: tuple, make: Callable[[], T]) -> T:
        """``make()``, once per entry and key (only from the report and the key: nothing of the person asking)."""
        if key not in self.made:
            self.made[key] = make()
        return self.made[key]


_BUMPS: dict = {}


def bump(connection, scopes=SCOPES) -> None:
    """Add one to each of the counters ``scopes`` (creating them at 1), in one statement and always in the same
    order. Called in the writer's transaction, just before it commits."""
    chosen = tuple(scope for scope in SCOPES if scope in scopes)
    if not chosen:
        return
    key = (connection.dialect.name, chosen)
    statement = _BUMPS.get(key)
    if statement is None:  # built once per dialect and set of counters (every settling writer runs one)
        if connection.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(ReportVersion).values([{"scope": scope, "version": 1} for scope in chosen])
        statement = _BUMPS[key] = statement.on_conflict_do_update(
            index_elements=["scope"], set_={"version": ReportVersion.version + 1}
        )
    connection.execute(statement)


def horizon(now: datetime, parts: tuple[str, ...] = ("active", "expiry")) -> datetime | None:
    """The first moment after ``now`` at which the report judged at ``now`` could change without a write (one query;
    ``parts``: only "active" people or only "expiry" of certificates).

    Active in the last 30 days is ``last_activity_at >= now - 30 days``: the set stays the same until the window's
    start passes the earliest activity inside it, m (so for moments up to m + 30 days). Expiring is
    ``now < expires_at <= now + 60 days``: the same until now reaches the next expiry or now + 60 days reaches
    the next expiry beyond it. Revoked and programme certificates are counted here too: an earlier horizon only
    means an earlier recomputation."""
    from insights.reports import moment_params

    values = db.session.execute(select(*horizon_columns(parts)), moment_params(now)).one()
    return horizon_from(list(values), parts)


def horizon_columns(parts: tuple[str, ...]) -> list:
    """``horizon``'s scalar subqueries, to be read as columns of another statement (a part's own, reports.py),
    with reports.moment_params(now)."""
    la, expires = Enrollment.last_activity_at, Certificate.expires_at
    columns = []
    if "active" in parts:
        columns.append(select(func.min(la)).where(la >= bindparam("active_since", type_=UTCDateTime)).scalar_subquery())
    if "expiry" in parts:
        now = bindparam("now", type_=UTCDateTime)
        until = bindparam("expiring_until", type_=UTCDateTime)
        columns.append(select(func.min(expires)).where(expires > now).scalar_subquery())
        columns.append(select(func.min(expires)).where(expires > until).scalar_subquery())
    return columns


def horizon_from(values: list, parts: tuple[str, ...]) -> datetime | None:
    """``horizon`` from the values of ``horizon_columns(now, parts)``."""
    values = list(values)
    candidates = []
    if "active" in parts:
        active_min = values.pop(0)
        if active_min is not None:
            candidates.append(active_min + ACTIVE + ONE_MICROSECOND)
    if "expiry" in parts:
        next_expiry, next_beyond = values
        if next_expiry is not None:
            candidates.append(next_expiry)
        if next_beyond is not None:
            candidates.append(next_beyond - EXPIRING)
    return min(candidates) if candidates else None


@dataclass(frozen=True)
class Part:
    """One part of a report (reports.build's sections), served for computed_at <= now < until."""

    value: object
    computed_at: datetime
    until: datetime | None


def _store() -> LocalStore:
    # one per app (setdefault is atomic in CPython: two first requests at once keep the same store)
    return current_app.extensions.setdefault("insights_dashboard", LocalStore(ENTRIES))


def _part_store(section: str) -> LocalStore:
    stores = current_app.extensions.setdefault("insights_dashboard_parts", {})
    return stores.setdefault(section, LocalStore(ENTRIES))


def _state_sql(dialect) -> str:
    """_state's statement as SQL text, made once per dialect: building and compiling it with SQLAlchemy on every
    request cost ~2 ms of CPU, more than the database took to answer it."""
    if dialect.name not in _STATE_SQL:
        rv, dirty = ReportVersion.__table__.c, PeopleDirty.__table__.c
        pending = [exists(select(dirty.user_id))]
        if dialect.name == "postgresql":  # SQLite's triggers update the day rows in place
            pending += [
                exists(select(table.c.course_id)) for table in (enrollment_day_changes, certificate_day_changes)
            ]
        statement = select(
            *(select(rv.version).where(rv.scope == scope).scalar_subquery() for scope in SCOPES), or_(*pending)
        )
        _STATE_SQL[dialect.name] = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return _STATE_SQL[dialect.name]


_STATE_SQL: dict[str, str] = {}


def _state() -> tuple[dict | None, bool]:
    """(every counter and the content version under the key None, whether anything is left unsettled), in one
    statement: the counters, and whether any user is marked or (PostgreSQL) any day change is waiting to be folded.
    Both are left only by SQL outside a session (a session folds and settles its own before it commits), so
    a request reads them with the counters instead of folding and locking the marks every time.
    (None, ...): caching is off."""
    token = content_version()
    db.session.flush()  # as a query through the session would (nothing to flush in a GET)
    connection = db.session.connection()
    *versions, pending = connection.exec_driver_sql(_state_sql(connection.dialect)).one()
    if token is None:  # content versions are off (an emptied database): so is this cache
        return None, bool(pending)
    counters = {scope: version or 0 for scope, version in zip(SCOPES, versions, strict=True)}
    return {None: token, **counters}, bool(pending)


_COLUMNS: dict[str | None, list] = {}


class _Parts:
    """reports.build's ``parts``: each part from this process's store while what it reads is unchanged (its
    counters, read before anything is computed) and time has not moved it; ``until`` is the earliest moment any
    part used can change. A part computed again is read with its horizon in the same statement (reports.build
    reads every part it needs in one)."""

    def __init__(self, versions: dict, now: datetime) -> None:
        self.versions, self.now = versions, now
        self.until: datetime | None = None

    def _version(self, section: str) -> str:
        scopes, _moving = SECTIONS[section]
        return ":".join([self.versions[None], *(str(self.versions[scope]) for scope in scopes)])

    def _use(self, part: Part) -> object:
        if part.until is not None and (self.until is None or part.until < self.until):
            self.until = part.until
        return part.value

    def get(self, section: str, key: tuple) -> object:
        """The part's value while it holds at ``now``, else ``MISSING``."""
        found = _part_store(section).get(self._version(section), key)
        now = self.now
        if isinstance(found, Part) and found.computed_at <= now and (found.until is None or now < found.until):
            return self._use(found)
        return MISSING

    def columns(self, section: str) -> list:
        """What to read with the part's own rows: the moment time alone would change it."""
        _scopes, moving = SECTIONS[section]
        if moving not in _COLUMNS:  # they hold no value (reports.moment_params gives them): made once
            _COLUMNS[moving] = horizon_columns((moving,)) if moving else []
        return _COLUMNS[moving]

    def put(self, section: str, key: tuple, value: T, values: list) -> T:
        """Keep ``value`` (computed at ``now``; ``values``: those of ``columns(section)``, read with it)."""
        _scopes, moving = SECTIONS[section]
        part = Part(value, self.now, horizon_from(values, (moving,)) if moving else None)
        _part_store(section).put(self._version(section), key, part)
        return self._use(part)


def entry(start: datetime, end: datetime, *, window_days: int, now: datetime) -> Entry:
    """The entry holding ``reports.build(start, end, window_days=..., now=now)``: this process's when it holds at
    ``now``, else built (and kept when it may be) from the parts of it that still hold.

    When the counters' statement says writes outside a session left marks or day changes, folds and settles them
    first (as build does; in the caller's transaction, which a GET rolls back); while there are any, nothing is
    served from or stored in the cache. Raises nothing of its own."""
    from insights import people, reports, rollups

    versions, pending = _state() if current_app.config.get("INSIGHTS_CACHE", True) else (None, True)
    if pending:  # left by SQL outside a session (or the cache is off): fold and settle as reports.build would
        if sum(rollups.fold()) + people.settle():
            versions = None
        elif versions is not None:  # someone else folded or settled them meanwhile: the counters after it
            versions, pending = _state()
            versions = None if pending else versions
    if versions is None:
        return Entry(reports.build(start, end, window_days=window_days, now=now, settled=True), now, None)
    version = ":".join(str(versions[scope]) for scope in (None, *SCOPES))
    key = (start, end, window_days)
    found = _store().get(version, key)
    if isinstance(found, Entry) and found.computed_at <= now and (found.until is None or now < found.until):
        return found
    parts = _Parts(versions, now)
    built = Entry(
        reports.build(start, end, window_days=window_days, now=now, settled=True, parts=parts), now, parts.until
    )
    _store().put(version, key, built)
    return built


def report(start: datetime, end: datetime, *, window_days: int, now: datetime):
    """``reports.build(start, end, window_days=..., now=now)``, from this process's entry when it holds at ``now``."""
    return entry(start, end, window_days=window_days, now=now).report
