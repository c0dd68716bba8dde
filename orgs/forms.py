"""Shape checks for organization forms; the rules live in services.py and come back as form errors."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import URL, DataRequired, Email, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from accounts.forms import no_control_chars, strip
from orgs.models import OrgKind, OrgRole


class CreateOrgForm(FlaskForm):
    name = StringField(
        _l("Organization name"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the organization's name.")), Length(max=200), no_control_chars],
    )
    kind = SelectField(
        _l("Kind of organization"),
        choices=[SelectChoice(k.value, k.label) for k in OrgKind],
        validators=[DataRequired(_l("Choose what kind of organization this is."))],
    )
    website = StringField(
        _l("Website"),
        filters=[strip],
        validators=[Optional(), Length(max=300), URL(message=_l("Enter a full address such as https://example.org."))],
    )
    contact_email = EmailField(
        _l("Your work email"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter your work email.")),
            Length(max=254),
            Email(_l("Enter a valid email address.")),
        ],
        description=_l("We send a link to this address. Nothing else happens until you follow it."),
    )
    submit = SubmitField(_l("Create organization"))


class DecisionForm(FlaskForm):
    note = TextAreaField(_l("Note (optional)"), filters=[strip], validators=[Optional(), Length(max=2000)])
    approve = SubmitField(_l("Approve"))
    decline = SubmitField(_l("Decline"))


class DomainForm(FlaskForm):
    domain = StringField(
        _l("Email domain to approve automatically"),
        filters=[strip],
        validators=[DataRequired(_l("Enter a domain.")), Length(max=253)],
        description=_l("Organizations that verify an email on this domain (e.g. dol.gov) are approved at once."),
    )
    submit = SubmitField(_l("Add domain"))


class SaveCandidateForm(FlaskForm):
    certificate_id = HiddenField(validators=[DataRequired(), Length(max=64)])
    note = StringField(_l("Note (e.g. the role they applied for)"), validators=[Optional(), Length(max=200)])


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class CohortForm(FlaskForm):
    name = StringField(
        _l("Cohort name"),
        filters=[strip],
        validators=[DataRequired(_l("Enter a name.")), Length(max=120), no_control_chars],
        description=_l("For example “Spring 2027 warehouse crew”."),
    )
    starts_on = DateField(_l("Start date"), validators=[DataRequired(_l("Enter the start date (YYYY-MM-DD)."))])
    ends_on = DateField(_l("End date (optional)"), validators=[Optional()])
    due_on = DateField(
        _l("Due date (optional)"),
        validators=[Optional()],
        description=_l("Members who have not completed the courses by this date are flagged “behind”."),
    )
    program_id = SelectField(
        _l("Program (optional)"),
        coerce=int,
        default=0,
        description=_l("A cohort following a program gets the program’s courses, and keeps them in step with it."),
    )
    course_ids = MultiCheckboxField(_l("Assigned courses"), coerce=int)
    submit = SubmitField(_l("Create cohort"))


class InviteForm(FlaskForm):
    email = EmailField(
        _l("Email address"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter an email address.")),
            Length(max=254),
            Email(_l("Enter a valid email address.")),
        ],
    )
    name = StringField(
        _l("Name (optional)"), filters=[strip], validators=[Optional(), Length(max=120), no_control_chars]
    )
    submit = SubmitField(_l("Send invitation"))


class RosterForm(FlaskForm):
    file = FileField(
        _l("Roster (CSV)"),
        validators=[FileRequired(_l("Choose a CSV file to upload."))],
        description=_l("One person per line: email, name. A first line “email,name” is skipped. Up to 2,000 lines."),
    )
    submit = SubmitField(_l("Check roster"))


class RosterConfirmForm(FlaskForm):
    roster = HiddenField(validators=[DataRequired()])
    submit = SubmitField(_l("Send the invitations"))


class LinkForm(FlaskForm):
    kind = HiddenField(validators=[DataRequired()])


class JoinCodeForm(FlaskForm):
    code = StringField(
        _l("Join code"),
        filters=[strip],
        validators=[DataRequired(_l("Enter the code you were given.")), Length(max=32)],
        description=_l("8 letters and digits, for example K7QM-2XWD."),
    )
    submit = SubmitField(_l("Continue"))


class ConsentForm(FlaskForm):
    shown = HiddenField(validators=[DataRequired()])
    submit = SubmitField(_l("I agree, join"))


class StaffForm(FlaskForm):
    email = EmailField(
        _l("Email of an existing account"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter an email address.")),
            Length(max=254),
            Email(_l("Enter a valid email address.")),
        ],
        description=_l("They need an account on this site first."),
    )
    role = SelectField(
        _l("Role"),
        choices=[SelectChoice(r.value, r.label) for r in OrgRole],
        validators=[DataRequired()],
    )
    submit = SubmitField(_l("Add or change role"))
