"""Shape checks for learner forms."""

from __future__ import annotations

import re

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from werkzeug.datastructures import MultiDict
from wtforms import SearchField, SelectField, SubmitField
from wtforms.validators import Length, Optional


class CatalogSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = SearchField(_l("Search courses"), validators=[Optional(), Length(max=100)])
    goal = SelectField(_l("Plan goal"), validators=[Optional()], validate_choice=False)
    skill = SelectField(_l("Skill"), validators=[Optional()], validate_choice=False)
    occupation = SelectField(_l("Occupation"), validators=[Optional()], validate_choice=False)
    audience = SelectField(_l("Who it's for"), validators=[Optional()], validate_choice=False)
    language = SelectField(_l("Language"), validators=[Optional()], validate_choice=False)


class QuizAnswersError(ValueError):
    pass


MAX_ANSWER_FIELDS = 200


def parse_answers(form: MultiDict) -> dict[int, list[str]]:
    """Read ``q-<position>`` fields holding this attempt's choice tokens; raise QuizAnswersError when malformed."""
    answers: dict[int, list[str]] = {}
    keys = [k for k in form if k.startswith("q-")]
    if len(keys) > MAX_ANSWER_FIELDS:
        raise QuizAnswersError(gettext("Too many answers were sent."))
    for key in keys:
        position, values = key[2:], form.getlist(key)
        if not (position.isascii() and position.isdigit() and len(position) <= 4) or any(
            not isinstance(v, str) or len(v) > 64 for v in values
        ):
            raise QuizAnswersError(gettext("Your answers could not be read. Please reload the quiz and try again."))
        if len(values) > 8:
            raise QuizAnswersError(gettext("Too many answers were sent for one question."))
        answers[int(position)] = values
    return answers


# ---- studio ---------------------------------------------------------------------------------------

from wtforms import (  # noqa: E402
    DateField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, NumberRange, Regexp, ValidationError  # noqa: E402
from wtforms.widgets import CheckboxInput, ListWidget  # noqa: E402

from accounts.forms import no_control_chars, strip  # noqa: E402
from courses.spec import COURSE_DETAILS, DEFAULT_LANGUAGE, LANGUAGES  # noqa: E402


class MultiCheckboxField(SelectMultipleField):
    """Checkboxes: a picker that works without JavaScript and with a screen reader."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _text(label, required, max_len: int = 200, **kwargs):
    """A one-line text field; ``label`` and the ``required`` message are lazy strings (the reader's language)."""
    return StringField(
        label,
        filters=[strip],
        validators=[
            DataRequired(required),
            Length(max=max_len, message=_l("Use at most %(max)d characters.", max=max_len)),
            no_control_chars,
        ],
        **kwargs,
    )


class RevisionForm(FlaskForm):
    """Buttons that change a draft (move, delete, publish): CSRF plus the draft revision the page showed."""

    revision = HiddenField(validators=[DataRequired()])

    def validate_revision(self, field):
        # ASCII digits only ("²".isdigit() is true but int() refuses it), and small enough for the database
        # only the value the page sent counts (a missing one leaves the page's default, an int, in .data)
        if not isinstance(field.data, str) or not re.fullmatch(r"[0-9]{1,9}", field.data):
            raise ValidationError(_l("This form is out of date. Reload the page."))


class CourseMetaForm(RevisionForm):
    title = _text(_l("Title"), _l("Enter the title."))
    summary = TextAreaField(
        _l("Summary (shown in the catalog)"),
        filters=[strip],
        validators=[DataRequired(_l("Write a summary.")), Length(max=2000)],
    )
    audience = TextAreaField(
        _l("Who it is for"),
        filters=[strip],
        validators=[DataRequired(_l("Say who the course is for.")), Length(max=1000)],
    )
    estimated_minutes = IntegerField(
        _l("Estimated minutes"),
        validators=[
            DataRequired(_l("Enter the minutes.")),
            NumberRange(1, 10_000, _l("Between 1 and 10,000 minutes.")),
        ],
    )
    validity_months = IntegerField(
        _l("Certificate valid for (months; empty = no expiry)"),
        validators=[Optional(), NumberRange(1, 240, _l("Between 1 and 240 months."))],
    )
    language = SelectField(
        _l("Language the course is written in"),
        choices=[SelectChoice(code, name, render_kw={"lang": code}) for code, name in LANGUAGES.items()],
        default=DEFAULT_LANGUAGE,
        validate_choice=True,
    )

    # One field per course detail (courses/spec.py COURSE_DETAILS), named like it: the studio copies them by name.
    def details(self) -> dict:
        return {name: self[name].data for name in COURSE_DETAILS}

    def detail_fields(self, *, skip: tuple[str, ...] = ()) -> list:
        return [self[name] for name in COURSE_DETAILS if name not in skip]


class NewCourseForm(CourseMetaForm):
    revision = HiddenField(default="0")
    slug = StringField(
        _l("Web address (slug)"),
        filters=[strip],
        validators=[
            DataRequired(_l("Choose a web address.")),
            Length(max=80),
            Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", message=_l("Lowercase letters, digits and single hyphens only.")),
        ],
        description=_l("Appears in links: /courses/your-slug. It cannot change after publishing."),
    )


class TagsForm(RevisionForm):
    skills = MultiCheckboxField(_l("Skills the course builds"), validate_choice=True)
    goals = MultiCheckboxField(_l("AI Action Plan goals it serves"), validate_choice=True)
    occupations = MultiCheckboxField(_l("Occupations it is for"), validate_choice=True)


class ModuleForm(RevisionForm):
    title = _text(_l("Module title"), _l("Enter the module title."))
    summary = TextAreaField(_l("Summary"), filters=[strip], validators=[Optional(), Length(max=2000)])
    skills = MultiCheckboxField(_l("Skills"), validate_choice=True)
    goals = MultiCheckboxField(_l("Plan goals"), validate_choice=True)


class LessonForm(RevisionForm):
    title = _text(_l("Lesson title"), _l("Enter the lesson title."))
    minutes = IntegerField(
        _l("Minutes to read"),
        validators=[DataRequired(_l("Enter the minutes.")), NumberRange(1, 600, _l("Between 1 and 600."))],
    )
    body = TextAreaField(
        _l("Lesson text (Markdown)"),
        validators=[
            DataRequired(_l("Write the lesson.")),
            Length(max=100_000, message=_l("Keep a lesson under 100,000 characters.")),
        ],
    )
    review_by = DateField(
        _l("Review by (optional)"),
        validators=[Optional()],
        description=_l(
            "For lessons with facts that will change (a program's status, a guidance revision): the day "
            "after which the studio lists the lesson for checking."
        ),
    )
    preview = SubmitField(_l("Preview"))
    save = SubmitField(_l("Save lesson"))


class QuizForm(RevisionForm):
    title = _text(_l("Quiz title"), _l("Enter the quiz title."))
    pass_mark = IntegerField(
        _l("Pass mark (%)"),
        validators=[DataRequired(_l("Enter the pass mark.")), NumberRange(1, 100, _l("Between 1 and 100."))],
    )
    max_attempts = IntegerField(
        _l("Attempts allowed (empty = unlimited)"), validators=[Optional(), NumberRange(1, 100)]
    )
    cooldown_minutes = IntegerField(
        _l("Minutes between attempts"), default=0, validators=[Optional(), NumberRange(0, 10_080)]
    )
    failure_cooldown_minutes = IntegerField(
        _l("Minutes to wait after two failed attempts in a row (0 = no wait)"),
        default=30,
        validators=[Optional(), NumberRange(0, 10_080)],
    )
    questions = TextAreaField(
        _l("Questions"), validators=[DataRequired(_l("Write at least one question.")), Length(max=50_000)]
    )


class BundleUploadForm(FlaskForm):
    file = FileField(_l("Course bundle (.zip)"), validators=[FileRequired(_l("Choose a zip file."))])
    submit = SubmitField(_l("Check and import"))


class ImageUploadForm(FlaskForm):
    file = FileField(_l("Image (PNG, JPEG or WebP)"), validators=[FileRequired(_l("Choose an image."))])
    alt_text = StringField(
        _l("Alt text: what the image shows, for people who cannot see it"),
        filters=[strip],
        validators=[DataRequired(_l("Describe the image (alt text).")), Length(max=300)],
    )
    next = HiddenField()
    submit = SubmitField(_l("Upload image"))
    uploaded: str | None = None  # the Markdown of an image just stored, shown back to the author


def one_line(value):
    """Paragraph text: line breaks typed in a text area become spaces (program files keep one paragraph)."""
    return " ".join(value.split()) if isinstance(value, str) else value


class ProgramForm(FlaskForm):
    # the program's content hash when the page was opened: a save over someone else's newer edit is refused
    seen = HiddenField()
    title = _text(_l("Title"), _l("Enter the title."))
    purpose = TextAreaField(
        _l("Purpose (shown in the catalog)"),
        filters=[one_line],
        validators=[DataRequired(_l("Say what the program prepares people for.")), Length(max=2000), no_control_chars],
    )
    audience = TextAreaField(
        _l("Who it is for"),
        filters=[one_line],
        validators=[DataRequired(_l("Say who the program is for.")), Length(max=1000), no_control_chars],
    )
    normal_weeks = IntegerField(
        _l("Normal time to complete (weeks)"),
        validators=[DataRequired(_l("Enter the weeks.")), NumberRange(1, 520, _l("Between 1 and 520 weeks."))],
        description=_l("Reports count completions within this time and within 150 percent of it."),
    )
    occupations = MultiCheckboxField(_l("Occupations it prepares for"), validate_choice=True)
    courses = MultiCheckboxField(
        _l("Courses (new ones are added at the end; set the order below)"),
        validate_choice=True,
        validators=[DataRequired(_l("Choose at least one course."))],
    )


class NewProgramForm(ProgramForm):
    slug = StringField(
        _l("Web address (slug)"),
        filters=[strip],
        validators=[
            DataRequired(_l("Choose a web address.")),
            Length(max=80),
            Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", message=_l("Lowercase letters, digits and single hyphens only.")),
        ],
        description=_l("Appears in links: /programs/your-slug."),
    )
