"""Shape checks for learner forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import SearchField, SelectField, SubmitField
from wtforms.validators import Length, Optional


class CatalogSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = SearchField("Search courses", validators=[Optional(), Length(max=100)])
    goal = SelectField("Plan goal", validators=[Optional()], validate_choice=False)
    skill = SelectField("Skill", validators=[Optional()], validate_choice=False)
    occupation = SelectField("Occupation", validators=[Optional()], validate_choice=False)
    audience = SelectField("Who it's for", validators=[Optional()], validate_choice=False)


class ActionForm(FlaskForm):
    """Enroll, mark complete, start attempt: a button whose point is the CSRF token."""

    submit = SubmitField("Go")


class QuizAnswersError(ValueError):
    pass


MAX_ANSWER_FIELDS = 200


def parse_answers(form: MultiDict) -> dict[int, list[int]]:
    """Read ``q-<question id>`` fields holding choice ids; raise QuizAnswersError on a malformed post."""
    answers: dict[int, list[int]] = {}
    keys = [k for k in form if k.startswith("q-")]
    if len(keys) > MAX_ANSWER_FIELDS:
        raise QuizAnswersError("Too many answers were sent.")
    for key in keys:
        try:
            qid = int(key[2:])
            values = [int(v) for v in form.getlist(key)]
        except ValueError:
            raise QuizAnswersError("Your answers could not be read. Please reload the quiz and try again.") from None
        if len(values) > 8:
            raise QuizAnswersError("Too many answers were sent for one question.")
        answers[qid] = values
    return answers
