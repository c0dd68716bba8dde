"""What publishing a draft changes (courses/studio.py publish_impact): the live course's steps read by query give
the same steps as the whole live course spec (courses/catalog.py course_spec) did."""

from __future__ import annotations

import dataclasses

from core.extensions import db
from courses import studio
from courses.catalog import course_spec
from tests.factories import enroll, load_test_framework, make_course, make_user


def test_publish_impact_names_the_steps_added_and_removed_as_the_live_spec_does(ctx):
    load_test_framework()
    course = make_course("ai-basics", modules=3, lessons=2)
    other = make_course("other-course", modules=1, lessons=1)  # another course's steps stay out
    enroll(make_user(email="mid@example.org"), course)
    db.session.commit()
    live = course_spec(course)
    assert studio._live_steps(course) == studio._steps(live)
    assert "Module 1 › Lesson 1.1" in studio._live_steps(course) and "Module 1 › quiz" in studio._live_steps(course)
    assert (
        studio._live_steps(other) == studio._steps(course_spec(other)) == {"Module 1 › Lesson 1.1", "Module 1 › quiz"}
    )

    first, second, third = live.modules
    renamed = dataclasses.replace(first.lessons[0], title="A new name")
    draft = dataclasses.replace(
        live,
        modules=[
            dataclasses.replace(first, lessons=[renamed, first.lessons[1]]),
            dataclasses.replace(second, quiz=None),
        ],
    )
    impact = studio.publish_impact(course, draft)
    assert impact == {
        "in_progress": 1,
        "completed": 0,
        "added": ["Module 1 › A new name"],
        "removed": sorted(
            {"Module 1 › Lesson 1.1", "Module 2 › quiz", "Module 3 › Lesson 3.1", "Module 3 › Lesson 3.2"}
            | ({"Module 3 › quiz"} if third.quiz else set())
        ),
    }
    assert impact["added"] == sorted(studio._steps(draft) - studio._steps(live))
    assert impact["removed"] == sorted(studio._steps(live) - studio._steps(draft))
