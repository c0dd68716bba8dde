"""The skills framework file, its loader, and the public framework pages."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.database import utcnow
from core.extensions import db
from skills.models import Occupation, PlanGoal, Skill
from skills.services import FRAMEWORK_FILE, FrameworkError, load_framework, load_framework_file
from tests.factories import FRAMEWORK_YAML, load_test_framework, make_course


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_shipped_framework_loads_and_reloading_changes_nothing(ctx):
    first = load_framework_file(now=utcnow())
    db.session.commit()
    assert first.changed
    goal_ids = set(db.session.scalars(select(PlanGoal.id)))
    assert {f"G{i}" for i in range(1, 15)} <= goal_ids
    assert count(Skill) >= 12
    assert all(len(s.goals) >= 1 for s in db.session.scalars(select(Skill)))
    electricians = db.session.get(Occupation, "47-2111.00")
    assert electricians.title == "Electricians"
    second = load_framework_file(now=utcnow())
    assert not second.changed
    assert second.summary() == "Skills framework is up to date; nothing changed."


def test_editing_the_file_updates_rows_in_place(ctx):
    load_test_framework()
    edited = FRAMEWORK_YAML.replace("name: AI Foundations", "name: AI Foundations for Work").replace(
        'occupations: ["43-4051.00"]', 'occupations: ["43-4051.00", "47-2111.00"]'
    )
    report = load_framework(edited, now=utcnow())
    db.session.commit()
    assert report.updated == ["skill AIL-01"]
    skill = db.session.get(Skill, "AIL-01")
    assert skill.name == "AI Foundations for Work"
    assert {o.code for o in skill.occupations} == {"43-4051.00", "47-2111.00"}
    assert count(Skill) == 2


def _without_inf01(text: str) -> str:
    start = text.index("  - id: INF-01")
    end = text.index("occupations:\n  - {code")
    return text[:start] + text[end:]


def test_removed_skill_is_retired_when_a_course_uses_it_and_deleted_otherwise(ctx):
    load_test_framework()
    make_course("power", skills=("INF-01",), occupations=("47-2111.00",))
    report = load_framework(_without_inf01(FRAMEWORK_YAML), now=utcnow())
    db.session.commit()
    assert report.retired == ["skill INF-01"]
    assert db.session.get(Skill, "INF-01").retired_at is not None

    db.session.execute(db.metadata.tables["course_skills"].delete())
    db.session.execute(db.metadata.tables["module_skills"].delete())
    db.session.commit()
    load_test_framework()  # back in the file: un-retired
    assert db.session.get(Skill, "INF-01").retired_at is None
    report = load_framework(_without_inf01(FRAMEWORK_YAML), now=utcnow())
    db.session.commit()
    assert report.deleted == ["skill INF-01"]
    assert db.session.get(Skill, "INF-01") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("goals: [G7]", "goals: [G99]"), "line 32 (skill INF-01): unknown goal id 'G99'"),
        (("id: INF-01", "id: AIL-01"), "duplicate id 'AIL-01' (first defined on line 18)"),
        (('{code: "47-2111.00"', '{code: "47-211"'), "line 36 (occupation 47-211): '47-211' is not an O*NET-SOC code"),
        (("level: intermediate", "level: expert"), "line 27 (skill INF-01): level must be one of"),
        (("pillar: II", "pillar: IV"), "line 10 (goal G7): pillar must be I, II or III"),
        (("summary: Make AI", "summary: [Make AI"), "framework.yaml, line"),
    ],
)
def test_malformed_file_is_refused_naming_the_line_and_nothing_is_written(ctx, change, message):
    bad = FRAMEWORK_YAML.replace(*change)
    assert bad != FRAMEWORK_YAML
    with pytest.raises(FrameworkError) as caught:
        load_framework(bad, now=utcnow())
    db.session.rollback()
    assert any(message in p for p in caught.value.problems), caught.value.problems
    assert count(Skill) == count(PlanGoal) == count(Occupation) == 0


def test_cli_load_reports_and_refuses_bad_files(app, ctx, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["skills", "load"])
    assert result.exit_code == 0 and "Skills framework loaded" in result.output
    assert runner.invoke(args=["skills", "load"]).output.strip() == "Skills framework is up to date; nothing changed."
    bad = tmp_path / "bad.yaml"
    bad.write_text(FRAMEWORK_FILE.read_text().replace("id: AIL-02", "id: AIL-01", 1))
    result = runner.invoke(args=["skills", "load", str(bad)])
    assert result.exit_code != 0 and "duplicate id 'AIL-01'" in result.output


def test_framework_pages(client, ctx):
    load_test_framework()
    make_course("power-basics", title="Power Basics", skills=("INF-01",), occupations=("47-2111.00",))
    page = client.get("/framework").get_data(as_text=True)
    assert "G7: Priority occupations" in page and "Power Basics" in page and "Electricians" in page
    skill_page = client.get("/skills/INF-01")
    assert skill_page.status_code == 200
    assert "Data Center Electrical Power Systems" in skill_page.get_data(as_text=True)
    assert "Power Basics" in skill_page.get_data(as_text=True)
    occupation = client.get("/occupations/47-2111.00").get_data(as_text=True)
    assert "Courses that build the skills for Electricians, 47-2111.00" in occupation
    assert "Power Basics" in occupation
    assert client.get("/skills/NOPE-99").status_code == 404
    assert client.get("/occupations/00-0000.00").status_code == 404
