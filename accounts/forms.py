"""Shape checks for account forms; business rules come back from services as DomainError."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, ValidationError

from accounts.models import Role
from accounts.passwords import MAX_LENGTH, MIN_LENGTH


def no_control_chars(form, field) -> None:
    if field.data and any(ord(ch) < 32 or ord(ch) == 127 for ch in field.data):
        raise ValidationError(_l("Remove line breaks and other invisible characters."))


def strip(value):
    return value.strip() if isinstance(value, str) else value


EMAIL = [DataRequired(_l("Enter your email address.")), Length(max=254), Email(_l("Enter a valid email address."))]
NAME = [
    DataRequired(_l("Enter your name.")),
    Length(max=120, message=_l("Use at most 120 characters.")),
    no_control_chars,
]
NEW_PASSWORD = [
    DataRequired(_l("Choose a password.")),
    Length(
        min=MIN_LENGTH,
        max=MAX_LENGTH,
        message=_l("Use between %(min)d and %(max)d characters.", min=MIN_LENGTH, max=MAX_LENGTH),
    ),
]


class RegisterForm(FlaskForm):
    name = StringField(_l("Full name"), validators=NAME, filters=[strip])
    email = EmailField(_l("Email"), validators=EMAIL, filters=[strip])
    password = PasswordField(_l("Password"), validators=NEW_PASSWORD)
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[DataRequired(_l("Repeat your password.")), EqualTo("password", _l("The passwords do not match."))],
    )
    next = HiddenField(validators=[Optional(), Length(max=2048)])  # e.g. back to an organization's invitation
    submit = SubmitField(_l("Create account"))


class LoginForm(FlaskForm):
    email = EmailField(
        _l("Email"), validators=[DataRequired(_l("Enter your email address.")), Length(max=254)], filters=[strip]
    )
    password = PasswordField(
        _l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=MAX_LENGTH)]
    )
    remember = BooleanField(_l("Keep me logged in on this device for 14 days"))
    next = HiddenField(validators=[Optional(), Length(max=2048)])
    submit = SubmitField(_l("Log in"))


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("Email"), validators=EMAIL, filters=[strip])
    submit = SubmitField(_l("Send reset link"))


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=NEW_PASSWORD)
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(_l("Repeat your password.")), EqualTo("password", _l("The passwords do not match."))],
    )
    submit = SubmitField(_l("Set new password"))


class ProfileForm(FlaskForm):
    name = StringField(_l("Name shown on the site"), validators=NAME, filters=[strip])
    legal_name = StringField(
        _l("Legal name printed on certificates"),
        validators=[
            DataRequired(_l("Enter your legal name.")),
            Length(max=120, message=_l("Use at most 120 characters.")),
            no_control_chars,
        ],
        filters=[strip],
        description=_l("Write it exactly as it should appear on your certificates, e.g. with accents."),
    )
    submit = SubmitField(_l("Save profile"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"), validators=[DataRequired(_l("Enter your current password.")), Length(max=MAX_LENGTH)]
    )
    password = PasswordField(_l("New password"), validators=NEW_PASSWORD)
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(_l("Repeat your password.")), EqualTo("password", _l("The passwords do not match."))],
    )
    submit = SubmitField(_l("Change password"))


class LanguageForm(FlaskForm):
    """The account page's language choice; its choices (the site's languages) are set by the view."""

    locale = SelectField(_l("Language of the site and of our emails"), validators=[Optional()])
    submit = SubmitField(_l("Save language"))


class SwitchLanguageForm(FlaskForm):
    """The header's language switcher for signed-in people: it also saves their preference."""

    next = HiddenField(validators=[Optional(), Length(max=2048)])


# lazy: choices are built at import and shown in the admin's language
ROLE_LABELS = {"learner": _l("Learner"), "admin": _l("Admin")}


class RoleForm(FlaskForm):
    role = SelectField(
        _l("Role"),
        choices=[SelectChoice(r.value, ROLE_LABELS.get(r.value, r.value)) for r in Role],
        validators=[DataRequired()],
    )
    submit = SubmitField(_l("Change role"))


class UserSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    q = StringField(_l("Search by name or email"), validators=[Optional(), Length(max=100)], filters=[strip])
    role = SelectField(
        _l("Role"),
        choices=[SelectChoice("", _l("Any role"))]
        + [SelectChoice(r.value, ROLE_LABELS.get(r.value, r.value)) for r in Role],
        validators=[Optional()],
    )
