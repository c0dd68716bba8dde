"""Per-participant export in the manner of the PIRL (Participant Individual Record Layout, ETA-9172): one row per
participant the workforce report counts as served, with the PIRL data elements we can fill from what the platform
knows, and the same definitions as the report (insights/workforce.py) so that the rows add up to its totals.

Who is in it: learners who joined a cohort of the organization, agreed to what it sees, and have not left; started
a counted enrollment before the period ended and had not exited before it began. A learner who left is absent.

What we cannot fill (the platform does not collect it, or it happens after training, outside the platform): state
and ZIP of residence, date of birth, sex, disability, ethnicity and race, veteran status, employment status and
barriers at entry, funding stream and co-enrollment, employment and earnings in the quarters after exit,
training-related employment, and whether a certificate is a "recognized postsecondary credential" (the
organization's program decides that). The README's "Per-participant export" section lists the columns.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import case, func, or_, select

from accounts.models import User
from core.csv import csv_text
from core.extensions import db
from courses.models import Enrollment
from insights.models import LearningDay
from insights.workforce import _learners, _tenths
from orgs.models import Cohort, CohortMember, Organization

# (column heading, record key). Headings name the PIRL element (number and name) a column fills; columns that are
# not PIRL elements say so, so nobody uploads them as one.
PIRL_COLUMNS = [
    ("PIRL 100 Unique Individual Identifier", "identifier"),
    ("Name (not a PIRL element)", "name"),
    ("Email (not a PIRL element)", "email"),
    ("Cohorts (not a PIRL element)", "cohorts"),
    ("PIRL 900 Date of Program Entry", "entry"),
    ("PIRL 901 Date of Program Exit", "exit"),
    ("Exit Type (not a PIRL element)", "exit_type"),
    ("PIRL 1300 Received Training", "received_training"),
    (
        "PIRL 1813 Date Completed, During Program Participation, an Education or Training Program Leading to a "
        "Recognized Postsecondary Credential or Employment",
        "completed",
    ),
    ("PIRL 1810 Date of Most Recent Measurable Skill Gains: Skills Progression", "latest_skill_gain"),
    ("Measurable Skill Gains in Period (not a PIRL element)", "skill_gains"),
    ("Course Certificates Attained in Period (not a PIRL element)", "credentials"),
    ("Hours of Instruction: Stated (not a PIRL element)", "stated_hours"),
    ("Hours of Instruction: Measured Active Time (not a PIRL element)", "measured_hours"),
]


def _pirl_date(value: datetime | date | str | None) -> str:
    """PIRL dates are DT 8: YYYYMMDD."""
    if value is None:
        return ""
    if isinstance(value, str):  # SQLite's date() gives text
        value = date.fromisoformat(value[:10])
    return value.strftime("%Y%m%d")


def identifier(user_id: int) -> str:
    """PIRL 100 (AN 12): the same for a person across periods and exports, never an SSN."""
    return f"AWA{user_id:09d}"


def participant_records(
    org: Organization,
    *,
    start: date,
    end: date,
    now: datetime,
    cohort: Cohort | None = None,
    program=None,
) -> list[dict]:
    """One record per participant served in the period, ordered by name (three queries). Read only; raises
    ValueError for a reversed period, like the report."""
    shared = _learners(org, start=start, end=end, now=now, cohort=cohort, program=program)
    person, at = shared.learner_total, shared.at
    completed = person.c.done >= person.c.required
    exit_at = case((completed, person.c.finish), (person.c.last < at(shared.cutoff), person.c.last))
    in_scope = select(shared.facts.c.enrollment_id)
    latest_gain = (
        select(Enrollment.user_id.label("user_id"), func.max(LearningDay.day).label("day"))
        .join(Enrollment, Enrollment.id == LearningDay.enrollment_id)
        .where(
            LearningDay.enrollment_id.in_(in_scope),
            LearningDay.first_passes > 0,
            LearningDay.day >= start,
            LearningDay.day <= end,
        )
        .group_by(Enrollment.user_id)
        .subquery()
    )
    rows = db.session.execute(
        select(
            person.c.user_id,
            User.name,
            User.email,
            person.c.start,
            exit_at.label("exit_at"),
            case((completed, 1), else_=0).label("completed"),
            person.c.finish,
            latest_gain.c.day,
            person.c.skill_gains,
            person.c.credentials,
            person.c.stated_minutes,
            person.c.measured_seconds,
        )
        .join(User, User.id == person.c.user_id)
        .outerjoin(latest_gain, latest_gain.c.user_id == person.c.user_id)
        .where(or_(exit_at.is_(None), exit_at >= at(shared.period_start)))
        .order_by(func.lower(User.name), User.email)
    ).all()
    cohorts: dict[int, list[str]] = {}
    member_cohorts = (
        select(CohortMember.user_id, Cohort.name)
        .join(Cohort, Cohort.id == CohortMember.cohort_id)
        .where(Cohort.organization_id == org.id, CohortMember.left_at.is_(None))
        .order_by(Cohort.name)
    )
    if cohort is not None:
        member_cohorts = member_cohorts.where(CohortMember.cohort_id == cohort.id)
    for user_id, name in db.session.execute(member_cohorts):
        cohorts.setdefault(user_id, []).append(name)
    records = []
    for r in rows:
        exited = r.exit_at is not None
        records.append(
            {
                "identifier": identifier(r.user_id),
                "name": r.name,
                "email": r.email,
                "cohorts": "; ".join(cohorts.get(r.user_id, [])),
                "entry": _pirl_date(r.start),
                "exit": _pirl_date(r.exit_at) if exited else "",
                "exit_type": ("completed" if r.completed else "90 days without activity") if exited else "",
                "received_training": 1,
                "completed": _pirl_date(r.finish) if r.completed else "",
                "latest_skill_gain": _pirl_date(r.day),
                "skill_gains": int(r.skill_gains or 0),
                "credentials": int(r.credentials or 0),
                "stated_hours": _tenths(float(r.stated_minutes or 0) / 60),
                "measured_hours": _tenths(float(r.measured_seconds or 0) / 3600),
            }
        )
    return records


def to_pirl_csv(records: list[dict]) -> str:
    """Formula-safe CSV (core/csv.py): names and emails are typed by people."""
    return csv_text([name for name, _ in PIRL_COLUMNS], ([r[key] for _, key in PIRL_COLUMNS] for r in records))
