"""Shape checks for certificate forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectChoice, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from accounts.forms import no_control_chars, strip
from credentials.models import RevocationReason


class VerifyForm(FlaskForm):
    class Meta:
        csrf = False  # a GET lookup changes nothing

    id = StringField(
        "Certificate ID",
        validators=[Optional(), Length(max=64, message="That is too long to be a certificate ID.")],
        description="28 letters and digits, for example 7K3Q-9XWM-... Dashes, spaces and case do not matter.",
    )


class BulkVerifyForm(FlaskForm):
    file = FileField(
        "CSV file of certificate IDs",
        validators=[FileRequired("Choose a CSV file to upload.")],
        description="One certificate ID per line, optionally followed by a comma and the name you were given. "
        "Up to 5,000 lines.",
    )
    show = SubmitField("Check certificates")
    download = SubmitField("Check and download CSV")


class RevokeForm(FlaskForm):
    reason = SelectField(
        "Reason",
        choices=[SelectChoice(r.value, r.label) for r in RevocationReason],
        validators=[DataRequired("Choose a reason.")],
    )
    note = TextAreaField(
        "Note (kept in the history; the category is shown publicly)",
        validators=[DataRequired("Explain the revocation."), Length(max=1000)],
        filters=[strip],
    )
    submit = SubmitField("Revoke certificate")


class NameChangeForm(FlaskForm):
    requested_name = StringField(
        "Your legal name as it should appear",
        filters=[strip],
        validators=[
            DataRequired("Enter the name."),
            Length(max=120, message="Use at most 120 characters."),
            no_control_chars,
        ],
    )
    reason = TextAreaField("Why the change? (optional)", validators=[Optional(), Length(max=500)], filters=[strip])
    submit = SubmitField("Request correction")


class DecisionForm(FlaskForm):
    note = TextAreaField("Note to the learner (optional)", validators=[Optional(), Length(max=500)], filters=[strip])
    approve = SubmitField("Approve and reissue")
    reject = SubmitField("Reject")


class CredentialUploadForm(FlaskForm):
    file = FileField(
        "Certificate PDF, credential JSON or SVG badge",
        validators=[FileRequired("Choose the file you were sent.")],
        description="A PDF certificate from this site carries its signed credential inside it.",
    )
    submit = SubmitField("Verify file")
