"""Shape checks for organization forms; the rules live in services.py and come back as form errors."""

from __future__ import annotations

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
        "Organization name",
        filters=[strip],
        validators=[DataRequired("Enter the organization's name."), Length(max=200), no_control_chars],
    )
    kind = SelectField(
        "Kind of organization",
        choices=[SelectChoice(k.value, k.label) for k in OrgKind],
        validators=[DataRequired("Choose what kind of organization this is.")],
    )
    website = StringField(
        "Website",
        filters=[strip],
        validators=[Optional(), Length(max=300), URL(message="Enter a full address such as https://example.org.")],
    )
    contact_email = EmailField(
        "Your work email",
        filters=[strip],
        validators=[DataRequired("Enter your work email."), Length(max=254), Email("Enter a valid email address.")],
        description="We send a link to this address. Nothing else happens until you follow it.",
    )
    submit = SubmitField("Create organization")


class DecisionForm(FlaskForm):
    note = TextAreaField("Note (optional)", filters=[strip], validators=[Optional(), Length(max=2000)])
    approve = SubmitField("Approve")
    decline = SubmitField("Decline")


class DomainForm(FlaskForm):
    domain = StringField(
        "Email domain to approve automatically",
        filters=[strip],
        validators=[DataRequired("Enter a domain."), Length(max=253)],
        description="Organizations that verify an email on this domain (e.g. dol.gov) are approved at once.",
    )
    submit = SubmitField("Add domain")


class SaveCandidateForm(FlaskForm):
    certificate_id = HiddenField(validators=[DataRequired(), Length(max=64)])
    note = StringField("Note (e.g. the role they applied for)", validators=[Optional(), Length(max=200)])


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class CohortForm(FlaskForm):
    name = StringField(
        "Cohort name",
        filters=[strip],
        validators=[DataRequired("Enter a name."), Length(max=120), no_control_chars],
        description="For example “Spring 2027 warehouse crew”.",
    )
    starts_on = DateField("Start date", validators=[DataRequired("Enter the start date (YYYY-MM-DD).")])
    ends_on = DateField("End date (optional)", validators=[Optional()])
    due_on = DateField(
        "Due date (optional)",
        validators=[Optional()],
        description="Members who have not completed the courses by this date are flagged “behind”.",
    )
    course_ids = MultiCheckboxField("Assigned courses", coerce=int)
    submit = SubmitField("Create cohort")


class InviteForm(FlaskForm):
    email = EmailField(
        "Email address",
        filters=[strip],
        validators=[DataRequired("Enter an email address."), Length(max=254), Email("Enter a valid email address.")],
    )
    name = StringField("Name (optional)", filters=[strip], validators=[Optional(), Length(max=120), no_control_chars])
    submit = SubmitField("Send invitation")


class RosterForm(FlaskForm):
    file = FileField(
        "Roster (CSV)",
        validators=[FileRequired("Choose a CSV file to upload.")],
        description="One person per line: email, name. A first line “email,name” is skipped. Up to 2,000 lines.",
    )
    submit = SubmitField("Check roster")


class RosterConfirmForm(FlaskForm):
    roster = HiddenField(validators=[DataRequired()])
    submit = SubmitField("Send the invitations")


class LinkForm(FlaskForm):
    kind = HiddenField(validators=[DataRequired()])


class JoinCodeForm(FlaskForm):
    code = StringField(
        "Join code",
        filters=[strip],
        validators=[DataRequired("Enter the code you were given."), Length(max=32)],
        description="8 letters and digits, for example K7QM-2XWD.",
    )
    submit = SubmitField("Continue")


class ConsentForm(FlaskForm):
    shown = HiddenField(validators=[DataRequired()])
    submit = SubmitField("I agree, join")


class StaffForm(FlaskForm):
    email = EmailField(
        "Email of an existing account",
        filters=[strip],
        validators=[DataRequired("Enter an email address."), Length(max=254), Email("Enter a valid email address.")],
        description="They need an account on this site first.",
    )
    role = SelectField(
        "Role",
        choices=[SelectChoice(r.value, r.label) for r in OrgRole],
        validators=[DataRequired()],
    )
    submit = SubmitField("Add or change role")
