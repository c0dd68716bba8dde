"""The course specification without HTTP: tolerant loading of saved drafts and the studio's edits as functions."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from accounts.models import Role
from core.errors import DomainError
from core.extensions import db
from courses import spec as specs
from courses.models import CourseDraft
from courses.spec import (
    COURSE_DETAILS,
    ChoiceSpec,
    CourseSpec,
    LessonSpec,
    ModuleSpec,
    NoSuchStep,
    QuestionSpec,
    QuizSpec,
    from_dict,
    to_dict,
)
from tests.factories import course_spec, load_test_framework, make_course, make_user, sign_in

# A draft as the studio saved it before lessons had review_by, quizzes had failure_cooldown_minutes and courses had
# a language: those keys are absent.
OLD_DRAFT = {
    "slug": "warehouse-ai",
    "title": "AI for Warehouse Teams",
    "summary": "Short.",
    "audience": "Warehouse staff.",
    "estimated_minutes": 30,
    "validity_months": None,
    "skills": ["AIL-01"],
    "goals": ["G1"],
    "occupations": [],
    "modules": [
        {
            "slug": "getting-started",
            "title": "Getting started",
            "summary": "",
            "skills": [],
            "goals": [],
            "lessons": [{"slug": "pick-paths", "title": "Pick paths", "minutes": 8, "body": "Text.\n"}],
            "quiz": {
                "title": "Check",
                "pass_mark": 70,
                "max_attempts": None,
                "cooldown_minutes": 0,
                "questions": [
                    {
                        "kind": "true_false",
                        "prompt": "The AI is always right.",
                        "explanation": "It predicts.",
                        "choices": [{"text": "True", "correct": False}, {"text": "False", "correct": True}],
                    }
                ],
            },
        }
    ],
}


def test_an_old_draft_without_the_newer_fields_loads_with_their_defaults(caplog):
    with caplog.at_level(logging.WARNING, logger="courses.spec"):
        spec = from_dict(OLD_DRAFT)
    assert spec == CourseSpec(
        slug="warehouse-ai",
        title="AI for Warehouse Teams",
        summary="Short.",
        audience="Warehouse staff.",
        estimated_minutes=30,
        validity_months=None,
        skills=["AIL-01"],
        goals=["G1"],
        occupations=[],
        modules=[
            ModuleSpec(
                slug="getting-started",
                title="Getting started",
                lessons=[LessonSpec(slug="pick-paths", title="Pick paths", minutes=8, body="Text.\n", review_by=None)],
                quiz=QuizSpec(
                    title="Check",
                    pass_mark=70,
                    questions=[
                        QuestionSpec(
                            kind="true_false",
                            prompt="The AI is always right.",
                            explanation="It predicts.",
                            choices=[ChoiceSpec("True", False), ChoiceSpec("False", True)],
                        )
                    ],
                ),
            )
        ],
    )
    assert spec.language == "en" and spec.modules[0].quiz.failure_cooldown_minutes == 30
    assert caplog.records == []  # missing keys are expected, not worth a line


def test_a_draft_with_keys_this_code_does_not_know_loads_and_says_what_it_ignored(caplog):
    data = to_dict(from_dict(OLD_DRAFT))
    data["colour"] = "teal"
    data["modules"][0]["lessons"][0]["video_url"] = "https://example.org/v"
    data["modules"][0]["quiz"]["questions"][0]["choices"][1]["weight"] = 2
    with caplog.at_level(logging.WARNING, logger="courses.spec"):
        spec = from_dict(data, source="draft of warehouse-ai")
    assert spec == from_dict(OLD_DRAFT)
    messages = sorted(r.getMessage() for r in caplog.records)
    assert messages == [
        "draft of warehouse-ai.modules[0].lessons[0]: ignored the unknown key 'video_url' (saved by another version "
        "of the code)",
        "draft of warehouse-ai.modules[0].quiz.questions[0].choices[1]: ignored the unknown key 'weight' (saved by "
        "another version of the code)",
        "draft of warehouse-ai: ignored the unknown key 'colour' (saved by another version of the code)",
    ]


def test_a_spec_round_trips_through_json():
    spec = course_spec("round-trip")
    spec.language = "es"
    spec.modules[0].lessons[0].review_by = "2027-01-01"
    assert from_dict(to_dict(spec)) == spec


@pytest.mark.parametrize("data", [[], {"modules": {"slug": "x"}}, {"modules": [["not", "a", "module"]]}])
def test_a_draft_that_is_not_shaped_like_a_course_is_refused_with_where(data):
    with pytest.raises(ValueError, match="expected a"):
        from_dict(data)


def test_the_course_details_are_the_scalar_fields_in_file_order():
    assert list(COURSE_DETAILS) == ["title", "summary", "audience", "estimated_minutes", "validity_months", "language"]
    assert specs.details(course_spec("x")) == {
        "title": "Course x",
        "summary": "Summary of x.",
        "audience": "Everyone at work.",
        "estimated_minutes": 60,
        "validity_months": 24,
        "language": "en",
    }


# ---- edits --------------------------------------------------------------------------------------


def test_set_details_and_tags_return_a_new_spec_and_leave_the_old_one_alone():
    spec = course_spec("x")
    edited = specs.set_details(spec, title="New", language="es", validity_months=None)
    assert (edited.title, edited.language, edited.validity_months) == ("New", "es", None)
    assert (spec.title, spec.language, spec.validity_months) == ("Course x", "en", 24)
    with pytest.raises(TypeError, match="not a course detail: slug"):
        specs.set_details(spec, slug="other")
    tagged = specs.set_tags(spec, skills=["AIL-02"], goals=[], occupations=["43-4051.00"])
    assert (tagged.skills, tagged.goals, tagged.occupations) == (["AIL-02"], [], ["43-4051.00"])
    assert spec.skills == ["AIL-01"] and spec.goals == ["G1"]


def test_modules_are_added_with_unique_slugs_edited_moved_and_removed():
    spec = CourseSpec(slug="c", title="C")
    spec = specs.add_module(spec, title="Getting started", skills=["AIL-01"])
    spec = specs.add_module(spec, title="Getting Started!")
    spec = specs.add_module(spec, title="Quiz")
    assert [m.slug for m in spec.modules] == ["getting-started", "getting-started-2", "quiz-2"]
    assert spec.modules[0].skills == ["AIL-01"] and spec.modules[1].lessons == [] and spec.modules[1].quiz is None

    edited = specs.edit_module(spec, 1, title="Second", summary="Two.", skills=[], goals=["G1"])
    assert (edited.modules[1].slug, edited.modules[1].title, edited.modules[1].goals) == (
        "getting-started-2",
        "Second",
        ["G1"],
    )
    assert spec.modules[1].title == "Getting Started!"

    moved = specs.module_action(edited, 2, "up")
    assert [m.slug for m in moved.modules] == ["getting-started", "quiz-2", "getting-started-2"]
    assert [m.slug for m in specs.module_action(moved, 0, "delete").modules] == ["quiz-2", "getting-started-2"]
    with pytest.raises(DomainError, match="cannot move further"):
        specs.module_action(moved, 0, "up")
    with pytest.raises(DomainError, match="cannot move further"):
        specs.module_action(moved, 2, "down")
    with pytest.raises(NoSuchStep):
        specs.module_action(moved, 3, "delete")
    with pytest.raises(NoSuchStep):
        specs.edit_module(moved, -1, title="T", summary="", skills=[], goals=[])


def test_lessons_are_added_replaced_moved_and_removed():
    spec = specs.add_module(CourseSpec(slug="c"), title="M")
    spec = specs.save_lesson(spec, 0, None, title="Pick paths", minutes=8, body="One\r\nTwo\r\n\r\n", review_by=None)
    spec = specs.save_lesson(spec, 0, None, title="Pick paths", minutes=5, body="Second", review_by="2027-03-01")
    lessons = spec.modules[0].lessons
    assert [(x.slug, x.minutes, x.body, x.review_by) for x in lessons] == [
        ("pick-paths", 8, "One\nTwo\n", None),
        ("pick-paths-2", 5, "Second\n", "2027-03-01"),
    ]
    replaced = specs.save_lesson(spec, 0, 1, title="Renamed", minutes=6, body="New", review_by=None)
    assert (replaced.modules[0].lessons[1].slug, replaced.modules[0].lessons[1].title) == ("pick-paths-2", "Renamed")
    assert spec.modules[0].lessons[1].title == "Pick paths"
    assert [x.slug for x in specs.lesson_action(spec, 0, 1, "up").modules[0].lessons] == ["pick-paths-2", "pick-paths"]
    assert [x.slug for x in specs.lesson_action(spec, 0, 0, "delete").modules[0].lessons] == ["pick-paths-2"]
    with pytest.raises(DomainError, match="cannot move further"):
        specs.lesson_action(spec, 0, 1, "down")
    with pytest.raises(NoSuchStep):
        specs.save_lesson(spec, 0, 2, title="T", minutes=1, body="b", review_by=None)
    with pytest.raises(NoSuchStep):
        specs.save_lesson(spec, 1, None, title="T", minutes=1, body="b", review_by=None)


def test_set_quiz_replaces_the_modules_quiz():
    spec = specs.add_module(CourseSpec(slug="c"), title="M")
    question = QuestionSpec("single", "Q?", [ChoiceSpec("a", True), ChoiceSpec("b", False)], "Because.")
    edited = specs.set_quiz(
        spec,
        0,
        title="Check",
        pass_mark=80,
        max_attempts=3,
        cooldown_minutes=5,
        failure_cooldown_minutes=0,
        questions=[question],
    )
    assert edited.modules[0].quiz == QuizSpec("Check", 80, 3, 5, [question], 0)
    assert spec.modules[0].quiz is None
    with pytest.raises(NoSuchStep):
        specs.set_quiz(
            spec,
            4,
            title="",
            pass_mark=1,
            max_attempts=None,
            cooldown_minutes=0,
            failure_cooldown_minutes=0,
            questions=[],
        )


# ---- the studio reads without writing --------------------------------------------------------------


@pytest.fixture
def admin(client, ctx):
    load_test_framework()
    user = make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    return user


def test_opening_studio_pages_writes_no_draft(client, admin):
    course = make_course("ai-basics")
    for url in (
        "/studio/ai-basics",
        "/studio/ai-basics/modules/0",
        "/studio/ai-basics/modules/0/lessons/0",
        "/studio/ai-basics/modules/0/lessons/new",
        "/studio/ai-basics/modules/0/quiz",
        "/studio/ai-basics/preview",
    ):
        assert client.get(url).status_code == 200, url
    assert db.session.scalar(select(func.count()).select_from(CourseDraft)) == 0
    page = client.get("/studio/ai-basics").get_data(as_text=True)
    assert "Discard draft changes" not in page  # nothing to discard until a change is saved
    token = client.csrf_token("/studio/ai-basics")
    response = client.post(
        "/studio/ai-basics/meta",
        data={
            "meta-csrf_token": token,
            "meta-revision": "1",
            "meta-title": "Renamed",
            "meta-summary": "S.",
            "meta-audience": "A.",
            "meta-estimated_minutes": "60",
            "meta-language": "en",
        },
    )
    assert response.status_code == 303
    drafts = list(db.session.scalars(select(CourseDraft)))
    assert [(d.course_id, d.revision, d.spec["title"]) for d in drafts] == [(course.id, 2, "Renamed")]
    assert "Discard draft changes" in client.get("/studio/ai-basics").get_data(as_text=True)


# ---- steps per course (one function for the program pages and the cohort dashboard) -----------------


def test_step_counts_are_lessons_plus_quizzes_in_two_queries(ctx, count_queries):
    from courses.services import step_counts

    load_test_framework()
    with_quizzes = make_course("with-quizzes", modules=2, lessons=3, questions=2).id
    no_quizzes = make_course("no-quizzes", modules=3, lessons=1, questions=0).id
    result = {}
    queries = count_queries(lambda: result.update(step_counts([with_quizzes, no_quizzes, 999_999])))
    assert result == {with_quizzes: 2 * 3 + 2, no_quizzes: 3}
    assert queries == 2
    assert step_counts([]) == {}


def test_a_details_post_without_a_detail_keeps_the_drafts_value(client, admin):
    make_course("ai-basics")
    fields = {"meta-title": "Renamed", "meta-summary": "S.", "meta-audience": "A.", "meta-estimated_minutes": "60"}
    token = client.csrf_token("/studio/ai-basics")
    first = {"meta-csrf_token": token, "meta-revision": "1", "meta-language": "es", **fields}
    assert client.post("/studio/ai-basics/meta", data=first).status_code == 303
    # a page opened before the language field existed sends everything but the language
    second = {"meta-csrf_token": token, "meta-revision": "2", **fields, "meta-title": "Renamed again"}
    assert client.post("/studio/ai-basics/meta", data=second).status_code == 303
    draft = db.session.scalar(select(CourseDraft))
    db.session.refresh(draft)
    assert (draft.revision, draft.spec["title"], draft.spec["language"]) == (3, "Renamed again", "es")
