"""Dashboard numbers and the credential-attainment report.

Every number comes from a fixed handful of aggregate queries whatever the data size (no loop over learners):

1. the catalog and its goal/skill/occupation tags (rows: courses × tags);
2. enrollments started in the period, grouped by course and by time-to-complete in tenths of a day (rows: courses
   × distinct durations) — enrollment counts and medians for any group of courses are sums of these rows. Summed
   from the per-day rollup insights_enrollment_days (kept by triggers, see migration 0023), not from enrollments;
3. certificate lifecycle counts grouped by course, from the per-day rollup insights_certificate_days (plus the two
   partial days at either end of "expiring in 60 days", read from certificates by their expires_at index);
4. people: each learner's courses folded into a bit mask per measure (active in the last 30 days, enrolled in the
   period, completed, earned a credential within the window), then grouped by mask (rows: distinct masks, at most
   2^courses and in practice a few hundred). A group of courses counts a person once when their mask meets the
   group's mask, so "learners" and "participants" are people, never double-counted across courses. For a period
   from a whole day to past the latest enrollment (the dashboard's default and any "from ... to today"), the same
   numbers come from the rollup insights_people_days instead (insights/people.py: each person's last enrollment in
   a group is the one row of theirs that counts there), plus the first day of "active" read from enrollments.

Breakdowns by goal, skill and occupation use the courses' current tags.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from itertools import accumulate
from typing import TypeVar

from sqlalchemy import (
    Date,
    Integer,
    and_,
    any_,
    bindparam,
    case,
    cast,
    distinct,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
    union_all,
)

from core import contentcache
from core.database import UTCDateTime
from core.extensions import db
from courses.models import Course, Enrollment, course_goals, course_occupations, course_skills
from credentials.models import Certificate
from insights.models import CertificateDay, EnrollmentDay, PeopleDay
from skills.models import Occupation, PlanGoal, Skill

BITS = 62  # courses per 64-bit mask word (sums of distinct powers of two stay below 2**62)
MEASURES = ("active", "enrolled", "completed", "credentialed")
TAG_KINDS = ("goal", "skill", "occupation")
EXPIRING_DAYS = 60
T = TypeVar("T")
MISSING = object()  # a part that must be computed (build's ``parts``)


@dataclass
class Group:
    """One row of a breakdown: a course, a tag (goal, skill, occupation) or everything."""

    id: str
    name: str
    courses: int = 0  # bit mask of the courses in the group
    enrolled: int = 0  # enrollments started in the period
    completed: int = 0  # of those, completed
    durations: Counter = field(default_factory=Counter)  # tenths of a day → completed enrollments (a course's)
    # a group of courses keeps its courses' durations apart: merging ~500 durations per course into each of ~75
    # groups cost more than the rest of the report (the median is found across the parts instead)
    parts: list[Group] = field(default_factory=list)
    certificates_issued: int = 0
    certificates_revoked: int = 0
    expiring_60d: int = 0
    people: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEASURES, 0))
    # course mask → median, shared with every group built from the same started part: kept with the part, so a
    # write that does not change enrollments (a first activity of the day, a revocation) finds no median again
    medians: dict | None = field(default=None, repr=False, compare=False)
    _cumulative: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def completion_rate(self) -> float | None:
        return round(100 * self.completed / self.enrolled, 1) if self.enrolled else None

    @property
    def median_days_to_complete(self) -> float | None:
        """The lower middle completion time, in days to one decimal (durations are counted in tenths of a day)."""
        if self.medians is None:
            return self._median()
        if self.courses not in self.medians:
            self.medians[self.courses] = self._median()
        return self.medians[self.courses]

    def _median(self) -> float | None:
        if not self.parts:
            total = sum(self.durations.values())
            if not total:
                return None
            wanted, seen = (total - 1) // 2, 0
            for tenths in sorted(self.durations):
                seen += self.durations[tenths]
                if seen > wanted:
                    return tenths / 10
            raise AssertionError("unreachable")
        # the same lower middle over the parts' durations together: the smallest t with more than ``wanted``
        # durations <= t (binary search over t, counting in each part's running totals)
        parts = [part.cumulative() for part in self.parts if part.durations]
        total = sum(totals[-1] for _, totals in parts)
        if not total:
            return None
        wanted = (total - 1) // 2
        low, high = min(keys[0] for keys, _ in parts), max(keys[-1] for keys, _ in parts)
        while low < high:
            middle = (low + high) // 2
            at_most = 0
            for keys, totals in parts:
                i = bisect_right(keys, middle)
                if i:
                    at_most += totals[i - 1]
            if at_most > wanted:
                high = middle
            else:
                low = middle + 1
        return low / 10

    def cumulative(self) -> tuple[list[int], list[int]]:
        """A course's durations in order and their running totals (made once per report)."""
        if self._cumulative is None:
            keys = sorted(self.durations)
            self._cumulative = (keys, list(accumulate(self.durations[key] for key in keys)))
        return self._cumulative

    @property
    def credential_rate(self) -> float | None:
        p = self.people["enrolled"]
        return round(100 * self.people["credentialed"] / p, 1) if p else None

    def activity(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "enrolled": self.enrolled,
            "completed": self.completed,
            "completion_rate": self.completion_rate,
            "median_days_to_complete": self.median_days_to_complete,
            "active_learners_30d": self.people["active"],
            "certificates_issued": self.certificates_issued,
            "certificates_revoked": self.certificates_revoked,
            "expiring_60d": self.expiring_60d,
        }

    def attainment(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "participants": self.people["enrolled"],
            "completed": self.people["completed"],
            "credentialed": self.people["credentialed"],
            "credential_rate": self.credential_rate,
        }


@dataclass
class Report:
    overall: Group
    courses: list[Group]
    tags: dict[str, list[Group]]

    def tables(self) -> dict[str, list[dict]]:
        """Every downloadable table, by the key used in URLs."""
        tables = {"course": [g.activity() for g in self.courses]}
        for kind in TAG_KINDS:
            tables[kind] = [g.activity() for g in self.tags[kind]]
        tables["attainment-course"] = [g.attainment() for g in self.courses]
        tables["attainment-occupation"] = [g.attainment() for g in self.tags["occupation"] if g.people["enrolled"]]
        return tables


def _tenths(later, earlier):
    """Whole tenths of a day between two timestamp columns (durations are never negative)."""
    if db.engine.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", later - earlier) / 8640), Integer)
    # julianday() is a float: nudge up by ~9 ms so that exactly 2 days is 20 tenths, not 19.99999
    return cast((func.julianday(later) - func.julianday(earlier)) * 10 + 0.000001, Integer)


def _earned_within(window_days: int):
    """awarded_at <= enrolled_at + window days, exactly (insights/people.py applies the same rule in Python)."""
    if db.engine.dialect.name == "sqlite":
        # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff': compare the day, then the time of day on the same day
        shifted = func.date(Enrollment.enrolled_at, f"+{int(window_days)} days")
        awarded_day = func.date(Certificate.awarded_at)
        return or_(
            awarded_day < shifted,
            and_(
                awarded_day == shifted,
                func.substr(Certificate.awarded_at, 12) <= func.substr(Enrollment.enrolled_at, 12),
            ),
        )
    # make_interval(years, months, weeks, days); an interval compares with days as 24 hours, whatever the time zone
    return Certificate.awarded_at - Enrollment.enrolled_at <= func.make_interval(0, 0, 0, window_days)


def _tag_rows():
    """(kind, key, name, course id) for every goal, skill and occupation a course is tagged with."""
    parts = [
        select(literal_column(f"'{kind}'").label("kind"), key.label("key"), label.label("name"), link.c.course_id)
        .select_from(link)
        .join(model, model_key == key)
        for kind, link, key, model, model_key, label in (
            ("goal", course_goals, course_goals.c.goal_id, PlanGoal, PlanGoal.id, PlanGoal.title),
            ("skill", course_skills, course_skills.c.skill_id, Skill, Skill.id, Skill.name),
            (
                "occupation",
                course_occupations,
                course_occupations.c.occupation_code,
                Occupation,
                Occupation.code,
                Occupation.title,
            ),
        )
    ]
    return db.session.execute(union_all(*parts))


def _people(bit: dict[int, int], start: datetime, end: datetime, *, window_days: int, now: datetime, split: bool):
    """(measure, mask, number of people) rows, grouped by each person's set of courses per measure.

    ``split=False``: one pass over every enrollment active in the last 30 days or started in the period (the
    original query, kept as the oracle). ``split=True``: two queries, one over the enrollments active in the last
    30 days and one over those started in the period, each read through its own index (ix_enrollments_active_at,
    ix_enrollments_enrolled_at) instead of a scan of the whole table. An enrollment is one person and one course,
    so each person's sum of distinct course bits is the set of their courses either way."""
    in_period = and_(Enrollment.enrolled_at >= start, Enrollment.enrolled_at < end)
    active = Enrollment.last_activity_at >= now - timedelta(days=30)
    conditions = {
        "active": active,
        "enrolled": in_period,
        "completed": and_(in_period, Enrollment.completed_at.is_not(None)),
        "credentialed": and_(in_period, Certificate.id.is_not(None), _earned_within(window_days)),
    }
    words = max(1, -(-len(bit) // BITS))
    powers = [
        {course_id: 1 << (b % BITS) for course_id, b in bit.items() if b // BITS == w} or {0: 0} for w in range(words)
    ]

    def grouped(measures: tuple[str, ...], where, certificates: bool):
        columns = [
            func.sum(case((conditions[measure], case(powers[w], value=Enrollment.course_id)))).label(f"{measure}_{w}")
            for measure in measures
            for w in range(words)
        ]
        per_person = select(Enrollment.user_id, *columns).select_from(Enrollment)
        if certificates:
            per_person = per_person.outerjoin(
                Certificate,
                and_(Certificate.user_id == Enrollment.user_id, Certificate.course_id == Enrollment.course_id),
            )
        per_person = per_person.where(where).group_by(Enrollment.user_id).cte(f"per_person_{len(measures)}")
        selects = []
        for measure in measures:
            mask = [per_person.c[f"{measure}_{w}"] for w in range(words)]
            selects.append(
                select(literal_column(str(MEASURES.index(measure))).label("measure"), *mask, func.count())
                .where(or_(*(column.is_not(None) for column in mask)))
                .group_by(*mask)
            )
        return union_all(*selects) if len(selects) > 1 else selects[0]

    if split:
        queries = [grouped(("active",), active, False), grouped(MEASURES[1:], in_period, True)]
    else:
        queries = [grouped(MEASURES, or_(active, in_period), True)]
    for query in queries:
        for measure, *mask_words, people in db.session.execute(query):
            mask = sum(int(word or 0) << (BITS * w) for w, word in enumerate(mask_words))
            yield MEASURES[int(measure)], mask, people


def _later_enrollment():
    """Whether any enrollment starts on or after the period's end, as a column (when none does, "since the start"
    and "in the period" are the same people)."""
    return exists(select(EnrollmentDay.day).where(EnrollmentDay.day >= _on("end_day"), EnrollmentDay.n != 0))


def _powers(bit: dict[int, int]) -> list[dict[int, int]]:
    words = max(1, -(-len(bit) // BITS))
    return [
        {course_id: 1 << (b % BITS) for course_id, b in bit.items() if b // BITS == w} or {0: 0} for w in range(words)
    ]


def _rollup_counted(rows, bit: dict[int, int]) -> Counter:
    """(measure, course bit, bit mask of ``later``) → people, from summed insights_people_days rows."""
    counted: Counter = Counter()
    later_masks: dict[str, int] = {}  # a few hundred distinct ``later`` lists recur across ~3k rows at 10k learners
    for measure, course_id, later, n in rows:
        if course_id not in bit:
            continue
        mask = later_masks.get(later)
        if mask is None:
            mask = 0
            for other in later.split(",") if later else ():
                if int(other) in bit:
                    mask |= 1 << bit[int(other)]
            later_masks[later] = mask
        counted[(measure, 1 << bit[course_id], mask)] += n
    return counted


def _period_query():
    """People enrolled, completed and credentialed since the period's start (a whole day), as summed
    insights_people_days rows for ``_rollup_counted``, then ``_tally`` per group. For a period running past the
    latest enrollment these are the same numbers as _people's."""
    p = PeopleDay
    start_day, window = _on("start_day"), bindparam("window", type_=Integer)
    return (
        select(p.measure, p.course_id, p.later, func.sum(p.n))
        .where(
            p.n != 0,
            or_(
                and_(or_(p.measure == "enrolled", p.measure == "completed"), p.day >= start_day),
                and_(p.measure == "credentialed", p.day >= start_day, p.w_lo <= window, p.w_hi > window),
            ),
        )
        .group_by(p.measure, p.course_id, p.later)
    )


def _active_queries(bit: dict[int, int]) -> list:
    """People active in the last 30 days (``_active_counted`` adds up their rows): whole days from
    insights_people_days, and the first day, which starts inside a day, from enrollments."""
    since, first = _at("active_since"), _on("active_first_day")
    p = PeopleDay
    whole_days = (
        select(p.measure, p.course_id, p.later, func.sum(p.n))
        .where(p.n != 0, p.measure == "active", p.day > first)
        .group_by(p.measure, p.course_id, p.later)
    )
    # people whose last activity in a group falls on that first day are read from that day's enrollments (A: their
    # courses active since the start; L: active on later days)
    midnight = _at("active_first_midnight")
    powers = _powers(bit)

    def courses_where(condition, w):
        return func.sum(case((condition, case(powers[w], value=Enrollment.course_id))))

    la = Enrollment.last_activity_at
    # the day's people first, then their enrollments by user, both from indexes alone (ix_enrollments_active_at,
    # ix_enrollments_user_activity). As a join or IN (subquery), PostgreSQL read every enrollment active in the 30
    # days instead (1.5 s at 1M learners); = ANY(ARRAY(subquery)) makes it collect the users first, as one statement
    # (sending ~7k user ids back as parameters cost more than the query)
    on_first_day = select(Enrollment.user_id).where(la >= _at("active_first_start"), la < midnight).distinct()
    if db.engine.dialect.name == "postgresql":
        by_user = Enrollment.user_id == any_(func.array(on_first_day.scalar_subquery()))
    else:
        by_user = Enrollment.user_id.in_(on_first_day)
    per_user = (
        select(
            *(courses_where(and_(la >= since, la < midnight), w).label(f"a{w}") for w in range(len(powers))),
            *(courses_where(la >= midnight, w).label(f"l{w}") for w in range(len(powers))),
        )
        .where(by_user)  # by user (an index), not by la (a month of activity)
        .group_by(Enrollment.user_id)
        .subquery()
    )
    columns = list(per_user.c)
    return [whole_days, select(*columns, func.count()).group_by(*columns)]


def _active_counted(bit: dict[int, int], whole_days, first_day) -> Counter:
    """(measure, mask, later) → people active in the last 30 days, from the rows of ``_active_queries``."""
    counted = _rollup_counted(whole_days, bit)
    words = len(_powers(bit))
    for *mask_words, n in first_day:
        a = sum(int(word or 0) << (BITS * w) for w, word in enumerate(mask_words[:words]))
        later = sum(int(word or 0) << (BITS * w) for w, word in enumerate(mask_words[words:]))
        counted[("active", a, later)] += n  # counts once when some A course is in the group and no L course
    return counted


def _tally(named: list[tuple[tuple, Group]], *counted: Counter) -> dict[tuple, Counter]:
    """Group key → measure → people, from (measure, mask, later) → people: a row counts in every group holding a
    course of ``mask`` and none of ``later``. Kept as it is (a part of the report) until its rows change."""
    by_bit = _groups_by_bit([group for _, group in named])
    key_of = {id(group): key for key, group in named}
    tally: dict[tuple, Counter] = {}
    for part in counted:
        for (measure, mask, later), n in part.items():
            for group in _containing(by_bit, mask):
                if not group.courses & later:
                    key = key_of[id(group)]
                    if key not in tally:
                        tally[key] = Counter()
                    tally[key][measure] += n
    return tally


def _per_course(rows) -> dict[int, tuple[int, int, Counter]]:
    """Course id → (enrollments started, of those completed, tenths of a day to complete → completed), from
    (course id, tenths or None, enrollments) rows."""
    found: dict[int, list] = {}
    for course_id, tenths, n in rows:
        numbers = found.setdefault(course_id, [0, 0, Counter()])
        numbers[0] += n
        if tenths is not None:
            numbers[1] += n
            numbers[2][int(tenths)] += n
    return {
        course_id: (enrolled, completed, durations) for course_id, (enrolled, completed, durations) in found.items()
    }


def _groups_by_bit(groups: list[Group]) -> dict[int, list[Group]]:
    """Each course's bit → the groups holding that course (a course is in itself, "all courses" and its tags: a
    handful of the ~90 groups, so a row is checked against those instead of every group)."""
    by_bit: dict[int, list[Group]] = {}
    for group in groups:
        rest = group.courses
        while rest:
            low = rest & -rest
            by_bit.setdefault(low, []).append(group)
            rest ^= low
    return by_bit


def _containing(by_bit: dict[int, list[Group]], mask: int) -> list[Group]:
    """The groups holding any course of ``mask``, each once (exactly those with ``group.courses & mask``)."""
    if mask & (mask - 1) == 0:  # one course (every rollup row) or none
        return by_bit.get(mask, [])
    found: dict[int, Group] = {}
    rest = mask
    while rest:
        low = rest & -rest
        for group in by_bit.get(low, ()):
            found[id(group)] = group
        rest ^= low
    return list(found.values())


def _whole_days(start: datetime, end: datetime) -> bool:
    return all(
        moment.utcoffset() == timedelta(0) and moment == moment.replace(hour=0, minute=0, second=0, microsecond=0)
        for moment in (start, end)
    )


def _started_from_enrollments(start: datetime, end: datetime):
    """(course id, tenths of a day to complete or None, enrollments) for enrollments started in [start, end)."""
    in_period = and_(Enrollment.enrolled_at >= start, Enrollment.enrolled_at < end)
    started = (
        select(
            Enrollment.course_id,
            case(
                (
                    Enrollment.completed_at.is_not(None),
                    _tenths(Enrollment.completed_at, Enrollment.enrolled_at),
                )
            ).label("tenths"),
        )
        .where(in_period)
        .subquery()
    )
    return db.session.execute(
        select(started.c.course_id, started.c.tenths, func.count()).group_by(started.c.course_id, started.c.tenths)
    )


def _started_query():
    """The same rows as _started_from_enrollments, summed from whole days of insights_enrollment_days."""
    return (
        select(
            EnrollmentDay.course_id,
            case((EnrollmentDay.completed, EnrollmentDay.tenths)),
            func.sum(EnrollmentDay.n),
        )
        .where(EnrollmentDay.day >= _on("start_day"), EnrollmentDay.day < _on("end_day"), EnrollmentDay.n != 0)
        .group_by(EnrollmentDay.course_id, EnrollmentDay.completed, EnrollmentDay.tenths)
    )


def _expiring(now: datetime):
    """Not revoked and expiring in (now, now + 60 days]."""
    return and_(
        Certificate.revoked_at.is_(None),
        Certificate.expires_at > now,
        Certificate.expires_at <= now + timedelta(days=EXPIRING_DAYS),
    )


def _certificates_from_certificates(start: datetime, end: datetime, now: datetime):
    """(course id, issued in the period, revoked in the period, expiring within 60 days) per course."""

    def between(column, low, high):
        return func.count(case((and_(column >= low, column < high), 1)))

    return db.session.execute(
        select(
            Certificate.course_id,
            between(Certificate.awarded_at, start, end),
            between(Certificate.revoked_at, start, end),
            func.count(case((_expiring(now), 1))),
        ).group_by(Certificate.course_id)
    )


def _certificate_queries() -> list:
    """The numbers of _certificates_from_certificates from whole days of insights_certificate_days
    (``_certificate_counts`` adds them up).

    Expiry is measured from ``now``, not from midnight: the days strictly between today and the 60th day come
    from the rollup, and the rest of today and the start of the 60th day from certificates (by their expires_at
    index, so only those two partial days' rows are read)."""
    kind, day, n = CertificateDay.kind, CertificateDay.day, CertificateDay.n
    in_period = and_(day >= _on("start_day"), day < _on("end_day"))
    inside = and_(kind == "expires", day > _on("today"), day < _on("last_day"))

    def total(condition):
        return func.coalesce(func.sum(case((condition, n), else_=0)), 0)

    expiring = and_(
        Certificate.revoked_at.is_(None),
        Certificate.expires_at > _at("now"),
        Certificate.expires_at <= _at("expiring_until"),
    )
    return [
        select(
            CertificateDay.course_id,
            total(and_(kind == "issued", in_period)),
            total(and_(kind == "revoked", in_period)),
            total(inside),
        )
        .where(or_(in_period, inside))
        .group_by(CertificateDay.course_id),
        select(Certificate.course_id, func.count())
        .where(
            expiring,
            Certificate.course_id.is_not(None),
            or_(Certificate.expires_at < _at("tomorrow"), Certificate.expires_at >= _at("last_midnight")),
        )
        .group_by(Certificate.course_id),
    ]


def _certificate_counts(whole_days, partial_days) -> list[tuple[int, int, int, int]]:
    """(course id, issued, revoked, expiring) from the rows of ``_certificate_queries``."""
    counts: dict[int, list[int]] = {}
    for course_id, issued, revoked, expiring in whole_days:
        counts[course_id] = [int(issued), int(revoked), int(expiring)]
    for course_id, expiring in partial_days:
        counts.setdefault(course_id, [0, 0, 0])[2] += int(expiring)
    return [(course_id, *numbers) for course_id, numbers in counts.items()]


def _on(name: str):
    """A day the parts' queries are asked about (``part_params``): named, so that a query is built once."""
    return bindparam(name, type_=Date)


def _at(name: str):
    """A moment the parts' queries are asked about (``part_params``)."""
    return bindparam(name, type_=UTCDateTime)


def moment_params(now: datetime) -> dict:
    """The moments "now", "active_since" and "expiring_until" (the horizon's, insights/dashboard_cache.py)."""
    return {"now": now, "active_since": now - timedelta(days=30), "expiring_until": now + timedelta(days=EXPIRING_DAYS)}


def part_params(start: datetime, end: datetime, now: datetime, window_days: int) -> dict:
    """Every value the rollup parts' queries are asked with."""
    first = (now - timedelta(days=30)).date()  # the first, partial day of "active in the last 30 days"
    first_midnight = datetime.combine(first, time(), tzinfo=UTC) + timedelta(days=1)
    today, last = now.date(), (now + timedelta(days=EXPIRING_DAYS)).date()  # expiring: partial first and last day
    return {
        **moment_params(now),
        "start_day": start.date(),
        "end_day": end.date(),
        "window": window_days,
        "today": today,
        "last_day": last,
        "tomorrow": datetime.combine(today, time(), tzinfo=UTC) + timedelta(days=1),
        "last_midnight": datetime.combine(last, time(), tzinfo=UTC),
        "active_first_day": first,
        "active_first_start": first_midnight - timedelta(days=1),
        "active_first_midnight": first_midnight,
    }


@dataclass(frozen=True)
class _Statement:
    """Queries and columns as one statement, with how to take its row apart; on PostgreSQL also its SQL text and
    constant parameters (executed as they are: building, hashing and compiling the statement with SQLAlchemy cost
    more CPU than reading its answer, ~15 ms when every part is read)."""

    statement: object
    queries: int
    widths: list[int] | None  # PostgreSQL: the number of columns (arrays) of each query
    sql: str | None = None
    constants: dict = field(default_factory=dict)
    named: frozenset = frozenset()


_STATEMENTS: dict[tuple, _Statement] = {}  # per process: a few shapes (which parts, which catalog)


def _combined(queries: list, columns: list) -> _Statement:
    """The rows of each of ``queries`` and the value of each of ``columns`` (scalar subqueries) in one statement.
    After a write the dashboard needs up to seven small reads; on a busy machine each round trip to the database
    (waking its process, then ours) cost more than the read itself.

    PostgreSQL returns each query's columns as arrays (array_agg over one scan, so the arrays keep the rows'
    order; one-row subqueries side by side): building JSON instead cost more than the query (~8 ms for 2k rows
    at 10k learners). SQLite, in process and without arrays, returns each query's rows as one JSON array."""
    subs = [query.subquery() for query in queries]
    if db.engine.dialect.name != "postgresql":
        arrays = [
            select(func.json_group_array(func.json_array(*sub.c))).select_from(sub).scalar_subquery() for sub in subs
        ]
        return _Statement(select(*arrays, *columns), len(arrays), None)
    aggregated = [select(*(func.array_agg(column) for column in sub.c)).subquery() for sub in subs]
    statement = select(*(column for array in aggregated for column in array.c), *columns)
    if aggregated:
        joined = aggregated[0]
        for array in aggregated[1:]:
            joined = joined.join(array, true())
        statement = statement.select_from(joined)
    compiled = statement.compile(dialect=db.engine.dialect)
    if "POSTCOMPILE" in compiled.string:  # an expanding IN: left to SQLAlchemy
        return _Statement(statement, len(aggregated), [len(array.c) for array in aggregated])
    named = frozenset(name for name, value in compiled.params.items() if value is None)
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    return _Statement(
        statement, len(aggregated), [len(array.c) for array in aggregated], compiled.string, constants, named
    )


def _together(key: tuple, make: Callable[[], tuple[list, list]], params: dict) -> tuple[list[list], list]:
    """The rows of each query and the value of each column ``make()`` gives, read in one statement with
    ``params`` (built once per process and ``key``: the queries and columns must depend on nothing else)."""
    key = (db.engine.dialect.name, *key)
    found = _STATEMENTS.get(key)
    if found is None:
        queries, columns = make()
        if not queries and not columns:
            return [], []
        found = _combined(queries, columns)
        if len(_STATEMENTS) >= 256:  # never reached by the dashboard's few shapes; bounded all the same
            _STATEMENTS.clear()
        _STATEMENTS[key] = found
    if found.sql is not None:
        if not found.named <= params.keys():
            raise KeyError(f"no value for {sorted(found.named - params.keys())}")
        row = db.session.connection().exec_driver_sql(found.sql, {**found.constants, **params}).one()
    else:
        row = db.session.execute(found.statement, params).one()
    return _split(found, row)


def _split(found: _Statement, row) -> tuple[list[list], list]:
    if found.widths is None:  # SQLite: one JSON array per query, then the columns
        queries = found.queries
        return [json.loads(value) for value in row[:queries]], list(row[queries:])
    rows, at = [], 0
    for width in found.widths:
        values = row[at : at + width]
        rows.append(list(zip(*values, strict=True)) if values[0] is not None else [])
        at += width
    return rows, list(row[at:])


class _Compute:
    """``parts`` that keeps nothing: every part is computed."""

    def get(self, _section: str, _key: tuple) -> object:
        return MISSING

    def columns(self, _section: str) -> list:
        return []

    def put(self, _section: str, _key: tuple, value: T, _values: list) -> T:
        return value


def _catalog() -> tuple[list, list]:
    """(course id, slug, title) rows by title, and (kind, key, name, course id) tag rows: content only."""
    catalog = db.session.execute(select(Course.id, Course.slug, Course.title).order_by(Course.title, Course.id)).all()
    return [tuple(row) for row in catalog], [tuple(row) for row in _tag_rows()]


def _rolled_up_parts(parts, start: datetime, end: datetime, *, window_days: int, now: datetime, bit, named) -> dict:
    """The parts of the report read from the rollups, by section: each from ``parts`` while it holds, the others
    read together in one statement (two when it was not known yet whether the people parts are needed)."""
    # section: (key, its queries and its own columns (how many, which), its value from their rows and values)
    specs = {
        "started": (
            (start, end),
            (1, lambda: [_started_query()]),
            (1, lambda: [_later_enrollment()]),
            lambda rows, values: (_per_course(rows[0]), not values[0], {}),  # {}: medians, once computed
        ),
        "certificates": (
            (start, end),
            (2, _certificate_queries),
            (0, list),
            lambda rows, _values: _certificate_counts(*rows),
        ),
        "period": (
            (start, window_days),
            (1, lambda: [_period_query()]),
            (0, list),
            lambda rows, _values: _tally(named, _rollup_counted(rows[0], bit)),
        ),
        "active": (
            (),
            (2, lambda: _active_queries(bit)),
            (0, list),
            lambda rows, _values: _tally(named, _active_counted(bit, *rows)),
        ),
    }
    found = {}
    for section, (key, *_how) in specs.items():
        value = parts.get(section, key)
        if value is not MISSING:
            found[section] = value
    params = part_params(start, end, now, window_days)

    def read(sections: list[str]) -> None:
        kept = {section: parts.columns(section) for section in sections}  # what the cache reads with each part

        def make() -> tuple[list, list]:
            queries, columns = [], []
            for section in sections:
                _key, (_queries, make_queries), (_own, make_columns), _finish = specs[section]
                queries += make_queries()
                columns += [*make_columns(), *kept[section]]
            return queries, columns

        # the statement depends on which parts, the columns kept with each and the courses' bits, nothing else
        shape = (type(parts), *((section, len(kept[section])) for section in sections), tuple(bit.items()))
        rows, values = _together(shape, make, params)
        for section in sections:
            key, (n_queries, _queries), (n_own, _columns), finish = specs[section]
            n_kept = len(kept[section])
            value = finish(rows[:n_queries], values[:n_own])
            found[section] = parts.put(section, key, value, values[n_own : n_own + n_kept])
            rows, values = rows[n_queries:], values[n_own + n_kept :]

    # the people parts count only when no enrollment starts after the period (the started part says): when that is
    # not known yet, they are read with it for a period ending after now (the dashboard's always does), or after it
    people = ("period", "active")
    needed = found["started"][1] if "started" in found else end > now
    first = [section for section in ("started", "certificates", *(people if needed else ())) if section not in found]
    if first:
        read(first)
    if found["started"][1] and any(section not in found for section in people):
        read([section for section in people if section not in found])
    return found


def build(
    start: datetime,
    end: datetime,
    *,
    window_days: int,
    now: datetime,
    direct: bool = False,
    settled: bool = False,
    parts=None,
) -> Report:
    """Every number of the dashboard for enrollments started in [start, end) (a fixed handful of queries).

    When the period is whole UTC days (the dashboard's always are), enrollment and certificate counts come from the
    per-day rollups (insights_enrollment_days, insights_certificate_days); ``direct=True`` or a period starting or
    ending inside a day reads enrollments and certificates themselves, the oracle the rollups are tested against.
    Reads only; raises nothing of its own. ``settled=True``: the caller folded and settled in this transaction
    already (insights/dashboard_cache.py), so that is not done twice. ``parts``: where the parts of the report come
    from (insights/dashboard_cache.py keeps each part until what it reads changes; by default each is computed):
    ``get(section, key)`` (MISSING: compute it), ``columns(section)`` (read with it) and ``put(section, key, value,
    values of those columns)``. Sections: "started" (enrollments started in the period and whether any started
    after it), "certificates", "period" (people enrolled, completed, credentialed), "active" (people active in the
    last 30 days) and "scan" (all people, for a period that ends before the latest enrollment). The rollup parts
    that must be computed are read in one statement."""
    if direct:
        catalog, tag_rows = _catalog()  # the oracle reads everything itself
    else:
        catalog, tag_rows = contentcache.remember(("insights", "catalog"), _catalog)
    bit = {course_id: i for i, course_id in enumerate(sorted(course_id for course_id, _, _ in catalog))}
    courses = {course_id: Group(slug, title, courses=1 << bit[course_id]) for course_id, slug, title in catalog}
    overall = Group("all", "All courses", courses=(1 << len(bit)) - 1)
    tags: dict[str, dict[str, Group]] = {kind: {} for kind in TAG_KINDS}
    for kind, key, name, course_id in tag_rows:
        tags[kind].setdefault(key, Group(key, name)).courses |= 1 << bit[course_id]
    named = [
        *((("course", course_id), group) for course_id, group in courses.items()),
        (("all",), overall),
        *(((kind, key), group) for kind in TAG_KINDS for key, group in tags[kind].items()),
    ]

    rolled_up = not direct and _whole_days(start, end)
    if direct or parts is None:
        parts = _Compute()
    if rolled_up and not settled:
        from insights import people, rollups

        rollups.fold()  # changes PostgreSQL's triggers appended and no commit folded yet (this transaction's own)
        people.settle()  # users a write outside any session marked (bulk SQL); a session settles its own on commit
    if rolled_up:
        found = _rolled_up_parts(parts, start, end, window_days=window_days, now=now, bit=bit, named=named)
        started, open_ended, medians = found["started"]
        certificate_counts = found["certificates"]
    else:
        started, open_ended, medians = _per_course(_started_from_enrollments(start, end)), False, None
        certificate_counts = _certificates_from_certificates(start, end, now)
    for group in (*courses.values(), overall, *(g for kind in TAG_KINDS for g in tags[kind].values())):
        group.medians = medians
    for course_id, (enrolled, completed, durations) in started.items():
        group = courses[course_id]
        # the part's own Counter, read only from here on (reports are shared read-only, and so are parts)
        group.enrolled, group.completed, group.durations = enrolled, completed, durations

    for course_id, issued, revoked, expiring in certificate_counts:
        if course_id in courses:
            group = courses[course_id]
            group.certificates_issued += issued
            group.certificates_revoked += revoked
            group.expiring_60d += expiring

    # additive numbers (enrollments, certificates) of a group are the sums over its courses
    combined = [overall, *(g for kind in TAG_KINDS for g in tags[kind].values())]
    for group in combined:
        for course in courses.values():
            if group.courses & course.courses:
                group.enrolled += course.enrolled
                group.completed += course.completed
                group.parts.append(course)
                group.certificates_issued += course.certificates_issued
                group.certificates_revoked += course.certificates_revoked
                group.expiring_60d += course.expiring_60d
    # people are counted once per group however many of its courses they took
    everyone = [*courses.values(), *combined]
    if rolled_up and open_ended:
        for tally in (found["period"], found["active"]):
            for key, group in named:
                for measure, n in tally.get(key, {}).items():
                    group.people[measure] += n
    else:
        key = (start, end, window_days)
        scanned = parts.get("scan", key)
        if scanned is MISSING:
            scanned = list(_people(bit, start, end, window_days=window_days, now=now, split=not direct))
            kept = parts.columns("scan")
            values = _together((type(parts), "scan", len(kept)), lambda: ([], kept), moment_params(now))[1]
            scanned = parts.put("scan", key, scanned, values)
        for measure, mask, people_n in scanned:
            for group in everyone:
                if group.courses & mask:
                    group.people[measure] += people_n

    def shown(groups):
        busy = [g for g in groups if g.enrolled or g.people["active"] or g.certificates_issued or g.expiring_60d]
        return sorted(busy, key=lambda g: (-g.enrolled, g.id))

    return Report(overall, list(courses.values()), {kind: shown(tags[kind].values()) for kind in TAG_KINDS})


def quizzes() -> list[tuple]:
    """(quiz id, course title, module title, quiz title) for every quiz, in one query."""
    from courses.models import Module, Quiz

    return list(
        db.session.execute(
            select(Quiz.id, Course.title, Module.title, Quiz.title)
            .join(Module, Module.id == Quiz.module_id)
            .join(Course, Course.id == Module.course_id)
            .order_by(Course.title, Module.position)
        )
    )


def item_analysis(quiz_id: int) -> list[dict]:
    """Per question: submitted attempts, share answering correctly, and the most chosen wrong answer."""
    from courses.models import AttemptAnswer, Choice, Question

    totals = {
        qid: (n, right)
        for qid, n, right in db.session.execute(
            select(
                AttemptAnswer.question_id,
                func.count(distinct(AttemptAnswer.attempt_id)),
                func.count(distinct(case((AttemptAnswer.question_correct.is_(True), AttemptAnswer.attempt_id)))),
            )
            .join(Question, Question.id == AttemptAnswer.question_id)
            .where(Question.quiz_id == quiz_id)
            .group_by(AttemptAnswer.question_id)
        )
    }
    wrong: dict[int, tuple[str, int]] = {}
    for qid, text, n in db.session.execute(
        select(AttemptAnswer.question_id, Choice.text, func.count())
        .join(Choice, Choice.id == AttemptAnswer.choice_id)
        .join(Question, Question.id == AttemptAnswer.question_id)
        .where(Question.quiz_id == quiz_id, Choice.correct.is_(False))
        .group_by(AttemptAnswer.question_id, Choice.id, Choice.text)
    ):  # bounded by the quiz's choices, not by learners
        if qid not in wrong or n > wrong[qid][1]:
            wrong[qid] = (text, n)
    rows = []
    for qid, position, prompt in db.session.execute(
        select(Question.id, Question.position, Question.prompt)
        .where(Question.quiz_id == quiz_id)
        .order_by(Question.position)
    ):
        n, right = totals.get(qid, (0, 0))
        text, count = wrong.get(qid, (None, 0))
        rows.append(
            {
                "number": position + 1,
                "prompt": prompt,
                "answered": n,
                "correct_share": round(100 * right / n, 1) if n else None,
                "top_wrong_answer": text,
                "top_wrong_count": count,
            }
        )
    return rows
