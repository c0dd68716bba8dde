"""The workforce report on a hand-built data set whose every number is worked out by hand (both databases).

Period: 2026-01-01 to 2026-06-30, judged as of 2026-07-01 (so "90 days without activity" means no activity since
2026-04-02). Courses alpha and bravo each have 2 modules × (2 lessons of 5 minutes + a quiz) and 60 stated minutes,
so each quiz carries (60 − 20) / 2 = 20 stated minutes. Program "pathway" = alpha + bravo, normal time 4 weeks.

Measured time: a lesson counts the time since the previous activity in its course (enrolling, a lesson, a quiz
submitted) when at most 30 minutes; a quiz attempt counts its start-to-submit time.

- Ann (cohort 1, enrolled in the program): alpha 2026-03-02, lessons 10:00 10:10, quiz 10:15-10:20, lessons 10:25
  10:30, quiz 10:32-10:40 (0 + 600 + 300 + 300 + 300 + 480 = 1,980 s); bravo enrolled 03-03, done 03-20 09:00-09:35
  (the first lesson 17 days after enrolling: 0, then five 300 s steps = 1,500 s); both course certificates and the
  program certificate (18 days: within the normal time).
- Bob (cohort 1): alpha 2025-10-01, one lesson, last activity 2025-11-15 → exited before the period: not served.
- Cal (cohort 2): alpha 2026-02-01: lessons 08:00 and 08:20, quiz 09:00-09:10 (0 + 1,200 + 600 s), last activity
  02-10 → exited after 90 days without activity, on 02-10.
- Dee (cohort 2): bravo 2026-06-01, done 06-10 10:00-10:35 (1,500 s), certificate.
- Hal (cohort 1): alpha 2026-01-10, done 01-12 10:00-10:35 (1,500 s), certificate revoked 01-20.
- Eve (cohort 1, left), Fay (another organization), Gus (cohort 1, enrolled after the period): never counted.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from accounts.models import Role
from core.extensions import db
from courses.models import CourseStatus, Enrollment, LessonProgress, ProgramEnrollment, QuizAttempt
from courses.programs import ProgramSpec, apply_program
from courses.services import active_seconds
from credentials.models import Certificate, RevocationReason
from credentials.services import issue_for_enrollment, revoke
from insights.workforce import COLUMNS, workforce_report
from tests.factories import join_cohort, load_test_framework, make_cohort, make_course, make_org, make_user, sign_in

NOW = datetime(2026, 9, 1, tzinfo=UTC)
START, END = date(2026, 1, 1), date(2026, 6, 30)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def study(user, course, enrolled: str, day: str, times: list[str], *, last: str | None = None, complete=True):
    """Enroll at ``enrolled``; then on ``day`` do the course's steps in order at ``times`` (HH:MM; a quiz takes two
    times, start and submit). Completing issues the certificate at the last time."""
    enrollment = Enrollment(user_id=user.id, course_id=course.id, enrolled_at=t(enrolled), last_activity_at=t(enrolled))
    db.session.add(enrollment)
    db.session.flush()
    moments = iter(t(f"{day} {hhmm}") for hhmm in times)
    moment = None
    previous = t(enrolled)  # the learner's last activity in the course, as courses.services keeps it
    for module in course.modules:
        for lesson in module.lessons:
            moment = next(moments, None)
            if moment is None:
                break
            db.session.add(
                LessonProgress(
                    enrollment_id=enrollment.id,
                    lesson_id=lesson.id,
                    completed_at=moment,
                    active_seconds=active_seconds(previous, moment),
                )
            )
            previous = moment
        else:
            started, moment = next(moments, None), next(moments, None)
            if moment is None:
                break
            db.session.add(
                QuizAttempt(
                    enrollment_id=enrollment.id,
                    quiz_id=module.quiz.id,
                    attempt_no=1,
                    layout=[],
                    answers={},
                    score=100,
                    passed=True,
                    started_at=started,
                    submitted_at=moment,
                )
            )
            previous = moment
            continue
        break
    enrollment.last_activity_at = t(last) if last else (moment or t(enrolled))
    if complete:
        enrollment.completed_at = moment
        db.session.flush()
        issue_for_enrollment(enrollment, now=moment, issuer="AI Workforce Academy")
    db.session.commit()
    return enrollment


ALL_STEPS = ["10:00", "10:05", "10:10", "10:15", "10:20", "10:25", "10:30", "10:35"]


@pytest.fixture
def world(prebuilt_rows):
    return prebuilt_rows(build_world)  # built once per module, copied back for each test (tests/conftest.py)


def build_world() -> dict:
    load_test_framework()
    alpha = make_course("alpha", title="Alpha", occupations=("43-4051.00",))
    bravo = make_course("bravo", title="Bravo", occupations=("47-2111.00",))
    program, _ = apply_program(
        ProgramSpec("pathway", "Pathway", "P.", "A.", 4, [], ["alpha", "bravo"]),
        now=t("2026-01-01 00:00"),
        status=CourseStatus.PUBLISHED,
    )
    db.session.commit()
    owner = make_user(email="boss@example.org")
    org = make_org(owner, name="Acme Staffing")
    other = make_org(make_user(email="other@example.org"), name="Other Board")
    c1 = make_cohort(org, [alpha, bravo], name="Cohort one")
    c2 = make_cohort(org, [alpha, bravo], name="Cohort two")
    c3 = make_cohort(other, [alpha], name="Elsewhere")
    names = ("ann", "bob", "cal", "dee", "hal", "eve", "fay", "gus")
    people = {n: make_user(email=f"{n}@example.org", name=n.title()) for n in names}
    for name, cohort, left in [
        ("ann", c1, False),
        ("bob", c1, False),
        ("hal", c1, False),
        ("eve", c1, True),
        ("gus", c1, False),
        ("cal", c2, False),
        ("dee", c2, False),
        ("fay", c3, False),
    ]:
        join_cohort(cohort, people[name], now=t("2025-09-01 00:00"), left=left)
    ann = people["ann"]
    db.session.add(ProgramEnrollment(user_id=ann.id, program_id=program.id, enrolled_at=t("2026-03-02 10:00")))
    db.session.commit()
    study(
        ann,
        alpha,
        "2026-03-02 10:00",
        "2026-03-02",
        ["10:00", "10:10", "10:15", "10:20", "10:25", "10:30", "10:32", "10:40"],
    )
    study(
        ann,
        bravo,
        "2026-03-03 09:00",
        "2026-03-20",
        ["09:00", "09:05", "09:10", "09:15", "09:20", "09:25", "09:30", "09:35"],
    )
    study(people["bob"], alpha, "2025-10-01 09:00", "2025-10-01", ["09:00"], last="2025-11-15 12:00", complete=False)
    study(
        people["cal"],
        alpha,
        "2026-02-01 08:00",
        "2026-02-01",
        ["08:00", "08:20", "09:00", "09:10"],
        last="2026-02-10 12:00",
        complete=False,
    )
    study(people["dee"], bravo, "2026-06-01 10:00", "2026-06-10", ALL_STEPS)
    hal = study(people["hal"], alpha, "2026-01-10 09:00", "2026-01-12", ALL_STEPS)
    admin = make_user(role=Role.ADMIN)
    certificate = db.session.scalar(select(Certificate).where(Certificate.enrollment_id == hal.id))
    revoke(
        admin, certificate, reason=RevocationReason.ISSUED_IN_ERROR, note="Wrong learner.", now=t("2026-01-20 00:00")
    )
    db.session.commit()
    study(people["eve"], alpha, "2026-03-05 10:00", "2026-03-05", ALL_STEPS)
    study(people["fay"], alpha, "2026-03-05 10:00", "2026-03-05", ALL_STEPS)
    study(people["gus"], alpha, "2026-07-05 10:00", "2026-07-05", ALL_STEPS)
    assert db.session.scalar(select(Certificate).where(Certificate.program_id == program.id)).user_id == ann.id
    return {"org": org, "program": program, "c1": c1, "c2": c2, "c3": c3, "alpha": alpha, "bravo": bravo}


FIELDS = [
    "participants_served",
    "new_participants",
    "enrollments_started",
    "participants_exited",
    "exited_completed",
    "exited_inactive",
    "credentials_attained",
    "exiters_with_credential",
    "skill_gains",
    "participants_with_skill_gain",
    "stated_hours",
    "measured_hours",
]


def numbers(row) -> dict:
    return {f: getattr(row, f) for f in FIELDS}


def expect(*values) -> dict:
    return dict(zip(FIELDS, values, strict=True))


def test_known_answers_for_the_organization(world):
    report = workforce_report(world["org"], start=START, end=END, now=NOW)
    assert report.as_of == t("2026-07-01 00:00")
    assert numbers(report.total) == expect(4, 4, 5, 4, 3, 1, 3, 2, 9, 4, 4.5, 2.3)
    assert report.total.credential_rate == 50.0 and report.total.skill_gain_rate == 100.0
    assert report.total.completed_within_normal_time is None  # no program: no normal time
    [program] = report.rows["program"]
    assert program.name == "Pathway" and program.normal_weeks == 4
    assert numbers(program) == expect(4, 4, 5, 3, 1, 2, 1, 1, 9, 4, 4.5, 2.3)
    assert (program.completed_within_normal_time, program.completed_within_150pct) == (1, 1)
    assert program.credential_rate == 33.3
    courses = {r.name: r for r in report.rows["course"]}
    assert numbers(courses["Alpha"]) == expect(3, 3, 3, 3, 2, 1, 1, 1, 5, 3, 2.5, 1.5)
    assert numbers(courses["Bravo"]) == expect(2, 2, 2, 2, 2, 0, 2, 2, 4, 2, 2.0, 0.8)
    occupations = {r.key: r for r in report.rows["occupation"]}
    assert numbers(occupations["43-4051.00"]) == numbers(courses["Alpha"])
    assert occupations["47-2111.00"].name == "Electricians (47-2111.00)"
    cohorts = {r.name: r for r in report.rows["cohort"]}
    assert set(cohorts) == {"Cohort one", "Cohort two"}
    assert numbers(cohorts["Cohort one"]) == expect(2, 2, 3, 2, 2, 0, 2, 1, 6, 2, 3.0, 1.4)
    assert numbers(cohorts["Cohort two"]) == expect(2, 2, 2, 2, 1, 1, 1, 1, 3, 2, 1.5, 0.9)


def test_known_answers_for_one_program_and_one_cohort(world):
    report = workforce_report(world["org"], start=START, end=END, now=NOW, program=world["program"])
    # within the program, completing means completing it: Dee (bravo only) has not, and has not exited either
    assert numbers(report.total) == expect(4, 4, 5, 3, 1, 2, 3, 1, 9, 4, 4.5, 2.3)
    assert (report.total.normal_weeks, report.total.completed_within_normal_time) == (4, 1)
    report = workforce_report(world["org"], start=START, end=END, now=NOW, cohort=world["c2"])
    assert numbers(report.total) == expect(2, 2, 2, 2, 1, 1, 1, 1, 3, 2, 1.5, 0.9)
    assert [r.name for r in report.rows["cohort"]] == ["Cohort two"]


def test_a_shorter_period_and_a_normal_time_missed(world):
    # March only, as of 2026-04-01: Ann starts and finishes; Cal is within 90 days of her last activity (served, not
    # exited); Hal finished in January and Bob left in November (not served); Dee starts in June
    report = workforce_report(world["org"], start=date(2026, 3, 1), end=date(2026, 3, 31), now=NOW)
    assert numbers(report.total) == expect(2, 1, 2, 1, 1, 0, 2, 1, 4, 1, 2.0, 1.0)
    world["program"].normal_weeks = 2  # Ann took 18 days: within 150% (21 days), not within 2 weeks
    db.session.commit()
    [program] = workforce_report(world["org"], start=START, end=END, now=NOW).rows["program"]
    assert (program.completed_within_normal_time, program.completed_within_150pct) == (0, 1)


def test_learners_who_left_are_not_counted(world):
    before = workforce_report(world["org"], start=START, end=END, now=NOW).total.participants_served
    from orgs.models import CohortMember

    member = db.session.scalar(select(CohortMember).where(CohortMember.cohort_id == world["c2"].id).limit(1))
    member.left_at = NOW
    db.session.commit()
    assert workforce_report(world["org"], start=START, end=END, now=NOW).total.participants_served == before - 1


def test_the_report_runs_a_constant_number_of_queries(app, world, count_queries):
    org_id = world["org"].id

    def run():
        with app.app_context():
            from orgs.models import Organization

            workforce_report(db.session.get(Organization, org_id), start=START, end=END, now=NOW)

    small = count_queries(run)
    for n in range(30):
        learner = make_user(email=f"more{n}@example.org")
        join_cohort(world["c1"], learner, now=t("2025-09-01 00:00"))
        study(learner, world["alpha"], "2026-02-01 10:00", "2026-02-01", ALL_STEPS)
    assert count_queries(run) == small <= 12


def test_cli_prints_csv_and_json(app, world):
    runner = app.test_cli_runner()
    args = ["reports", "workforce", "--org", world["org"].slug, "--from", "2026-01-01", "--to", "2026-06-30"]
    result = runner.invoke(args=[*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rows"]["total"][0]["participants_served"] == 4  # judged as of the period's end, as with NOW
    result = runner.invoke(args=[*args, "--program", "pathway", "--format", "csv"])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.output)))
    assert list(table[0]) == [name for name, _ in COLUMNS]
    total = next(r for r in table if r["Breakdown"] == "total")
    assert total["Total Number of Participants Served"] == "4" and total["Program Length: Normal Time (weeks)"] == "4"
    assert (
        runner.invoke(
            args=["reports", "workforce", "--org", "nope", "--from", "2026-01-01", "--to", "2026-06-30"]
        ).exit_code
        != 0
    )
    bad = runner.invoke(args=[*args[:-4], "--from", "2026-06-30", "--to", "2026-01-01"])
    assert bad.exit_code != 0 and "before" in bad.output


def test_report_page_csv_chart_and_who_may_see_them(client, other_client, world):
    slug = world["org"].slug
    url = f"/organizations/{slug}/reports/workforce?from=2026-01-01&to=2026-06-30"
    sign_in(client, "boss@example.org")
    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "How each number is computed" in html and "Cohort two" in html and "Pathway" in html
    csv_response = client.get(url + "&format=csv")
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    assert "Total Number of Participants Served" in csv_response.get_data(as_text=True)
    chart = client.get(f"/organizations/{slug}/reports/workforce/hours.svg?from=2026-01-01&to=2026-06-30")
    assert chart.status_code == 200 and chart.mimetype == "image/svg+xml" and b"Alpha" in chart.data
    assert client.get(f"/organizations/{slug}/reports/workforce?from=2026-06-30&to=2026-01-01").status_code == 400
    assert client.get(f"/organizations/{slug}/reports/workforce?from=junk").status_code == 400
    other_cohort = world["c3"].id  # a cohort of another organization
    assert client.get(f"/organizations/{slug}/reports/workforce?cohort={other_cohort}").status_code == 404
    assert client.get(f"/organizations/{slug}/reports/workforce?program=nope").status_code == 404
    for email in ("other@example.org", "ann@example.org"):  # another organization's owner; a learner in a cohort
        sign_in(other_client, email)
        assert other_client.get(url).status_code == 404
        assert other_client.get(f"/organizations/{slug}/reports/workforce/hours.svg").status_code == 404
        other_client.post("/logout", data={"csrf_token": other_client.csrf_token("/account")})


def test_an_empty_organization_gets_zeros(ctx):
    load_test_framework()
    org = make_org(make_user(), name="Empty Board")
    report = workforce_report(org, start=START, end=END, now=NOW)
    assert report.total.participants_served == 0 and report.rows["course"] == []
    assert report.total.credential_rate is None


def test_completing_a_lesson_records_its_measured_active_time(ctx):
    from courses.services import complete_lesson, enroll

    load_test_framework()
    course = make_course("alpha")
    enrollment, _ = enroll(make_user(), course, now=t("2026-03-01 10:00"))
    lessons = [lesson for module in course.modules for lesson in module.lessons]
    complete_lesson(enrollment, lessons[0], now=t("2026-03-01 10:12"))
    complete_lesson(enrollment, lessons[1], now=t("2026-03-01 12:00"))  # away for 108 minutes: a new session
    complete_lesson(enrollment, lessons[1], now=t("2026-03-01 12:01"))  # a double click records nothing more
    db.session.commit()
    rows = db.session.execute(
        select(LessonProgress.lesson_id, LessonProgress.active_seconds).order_by(LessonProgress.completed_at)
    ).all()
    assert rows == [(lessons[0].id, 720), (lessons[1].id, 0)]


def test_per_participant_export_has_one_row_per_consenting_participant(client, other_client, app, world):
    from accounts.models import User
    from insights.participants import PIRL_COLUMNS, participant_records

    report = workforce_report(world["org"], start=START, end=END, now=NOW)
    records = participant_records(world["org"], start=START, end=END, now=NOW)
    # the same people the report counts as served: Bob exited before the period, Eve left, Fay is another
    # organization's, Gus started after the period
    assert [r["name"] for r in records] == ["Ann", "Cal", "Dee", "Hal"]
    assert len(records) == report.total.participants_served
    assert sum(r["skill_gains"] for r in records) == report.total.skill_gains
    assert sum(r["credentials"] for r in records) == report.total.credentials_attained
    ann, cal, dee, hal = records
    assert (ann["entry"], ann["exit"], ann["exit_type"], ann["completed"]) == (
        "20260302",
        "20260320",
        "completed",
        "20260320",
    )
    assert (ann["latest_skill_gain"], ann["skill_gains"], ann["credentials"]) == ("20260320", 4, 2)
    assert (ann["stated_hours"], ann["measured_hours"]) == (2.0, 1.0)  # 120 min; 1,980 + 1,500 s
    assert (cal["exit"], cal["exit_type"], cal["completed"], cal["latest_skill_gain"]) == (
        "20260210",
        "90 days without activity",
        "",
        "20260201",
    )
    assert (dee["exit"], dee["credentials"], hal["exit"], hal["credentials"]) == ("20260610", 1, "20260112", 0)
    assert len({r["identifier"] for r in records}) == 4 and all(len(r["identifier"]) == 12 for r in records)
    assert [
        r["name"] for r in participant_records(world["org"], start=START, end=END, now=NOW, cohort=world["c2"])
    ] == [
        "Cal",
        "Dee",
    ]

    # the download: formula-safe (names are typed by people), only for the organization's members
    dee_user = db.session.scalar(select(User).where(User.email == "dee@example.org"))
    dee_user.name = '=HYPERLINK("http://evil.example")'
    db.session.commit()
    url = f"/organizations/{world['org'].slug}/reports/workforce?from=2026-01-01&to=2026-06-30&format=pirl"
    sign_in(client, "boss@example.org")
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "no-store" in response.headers["Cache-Control"]
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0] == [name for name, _ in PIRL_COLUMNS]
    assert "PIRL 100 Unique Individual Identifier" in table[0] and len(table) == 5
    assert [row[1] for row in table if "dee@example.org" in row] == ['\'=HYPERLINK("http://evil.example")']
    assert not any("eve@example.org" in row or "fay@example.org" in row for row in table)
    page = client.get(url.replace("&format=pirl", ""))
    assert "format=pirl" in page.get_data(as_text=True)
    for email in ("other@example.org", "ann@example.org"):
        sign_in(other_client, email)
        assert other_client.get(url).status_code == 404
        other_client.post("/logout", data={"csrf_token": other_client.csrf_token("/account")})

    runner = app.test_cli_runner()
    args = ["reports", "workforce", "--org", world["org"].slug, "--from", "2026-01-01", "--to", "2026-06-30"]
    result = runner.invoke(args=[*args, "--per-participant"])
    assert result.exit_code == 0, result.output
    assert len(list(csv.reader(io.StringIO(result.output)))) == 5
    result = runner.invoke(args=[*args, "--per-participant", "--format", "json"])
    assert sorted(r["email"] for r in json.loads(result.output)) == [
        "ann@example.org",
        "cal@example.org",
        "dee@example.org",
        "hal@example.org",
    ]
