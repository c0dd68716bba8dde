"""Shape checks for certificate forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, SelectChoice, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from accounts.forms import no_control_chars, strip
from credentials.models import RevocationReason


class VerifyForm(FlaskForm):
    class Meta:
        csrf = False  # a GET lookup changes nothing

    id = StringField(
        _l("Certificate ID"),
        validators=[Optional(), Length(max=64, message=_l("That is too long to be a certificate ID."))],
        description=_l("28 letters and digits, for example 7K3Q-9XWM-... Dashes, spaces and case do not matter."),
    )


class BulkVerifyForm(FlaskForm):
    file = FileField(
        _l("CSV file of certificate IDs"),
        description=_l(
            "One certificate ID per line, optionally followed by a comma and the name you were given. "
            "Up to 5,000 lines."
        ),
    )
    # the list as text: pasted, or filled in from the uploaded file, so the input stays on the page to correct
    ids = TextAreaField(
        _l("Or paste the list here"),
        validators=[Optional(), Length(max=400_000)],
        description=_l("The same format: an ID per line, a comma and the name if you have it."),
    )
    show = SubmitField(_l("Check certificates"))
    download = SubmitField(_l("Check and download CSV"))


REASON_LABELS = {
    "issued_in_error": _l("Issued in error"),
    "academic_misconduct": _l("Academic misconduct"),
    "identity_mismatch": _l("Identity could not be confirmed"),
    "superseded": _l("Superseded by another certificate"),
    "holder_request": _l("Withdrawn at the holder's request"),
    "other": _l("Other"),
    "stacked_revoked": _l("A course credential it stacks was revoked"),
}


class RevokeForm(FlaskForm):
    reason = SelectField(
        _l("Reason"),
        # lazy labels: the choices are built at import and shown in the admin's language
        choices=[SelectChoice(r.value, REASON_LABELS.get(r.value, r.value)) for r in RevocationReason],
        validators=[DataRequired(_l("Choose a reason."))],
    )
    note = TextAreaField(
        _l("Note (kept in the history; the category is shown publicly)"),
        validators=[DataRequired(_l("Explain the revocation.")), Length(max=1000)],
        filters=[strip],
    )
    submit = SubmitField(_l("Revoke certificate"))


class SuspendForm(FlaskForm):
    # named apart from RevokeForm's fields: both forms sit on the same page, and ids must not repeat
    suspension_reason = TextAreaField(
        # no "Reason" in it: the revocation form's "Reason" sits on the same page, and a label should name one field
        _l("Why it is suspended (kept in the history and shown to the holder, not to the public)"),
        validators=[DataRequired(_l("Explain the suspension.")), Length(max=1000)],
        filters=[strip],
    )
    # a date, not a time: the suspension ends as that day begins (00:00 UTC); services checks it is ahead
    suspended_until = DateField(
        _l("Suspended until (optional)"),
        validators=[Optional()],
        description=_l("The suspension ends as this day begins (00:00 UTC). Leave it empty to suspend until lifted."),
    )
    submit = SubmitField(_l("Suspend certificate"))


class NameChangeForm(FlaskForm):
    requested_name = StringField(
        _l("Your legal name as it should appear"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the name.")),
            Length(max=120, message=_l("Use at most 120 characters.")),
            no_control_chars,
        ],
    )
    reason = TextAreaField(_l("Why the change? (optional)"), validators=[Optional(), Length(max=500)], filters=[strip])
    submit = SubmitField(_l("Request correction"))


class DecisionForm(FlaskForm):
    note = TextAreaField(
        _l("Note to the learner (optional)"), validators=[Optional(), Length(max=500)], filters=[strip]
    )
    approve = SubmitField(_l("Approve and reissue"))
    reject = SubmitField(_l("Reject"))


class CredentialUploadForm(FlaskForm):
    file = FileField(
        _l("Certificate PDF, credential JSON or SVG badge"),
        validators=[FileRequired(_l("Choose the file you were sent."))],
        description=_l("A PDF certificate from this site carries its signed credential inside it."),
    )
    submit = SubmitField(_l("Verify file"))


class BrandingForm(FlaskForm):
    issuer_address = StringField(
        _l("Issuer's address line (printed under the issuer's name)"),
        filters=[strip],
        validators=[Optional(), Length(max=300), no_control_chars],
        description=_l("e.g. 200 Constitution Ave NW, Washington, DC 20210"),
    )
    signatory_name = StringField(
        _l("Authorized signatory: name"), filters=[strip], validators=[Optional(), Length(max=120), no_control_chars]
    )
    signatory_title = StringField(
        _l("Authorized signatory: title"), filters=[strip], validators=[Optional(), Length(max=120), no_control_chars]
    )
    seal = FileField(_l("Seal or logo (PNG, JPEG or WebP; square works best)"))
    seal_alt = StringField(
        _l("Seal description, for people who cannot see it"),
        filters=[strip],
        validators=[Optional(), Length(max=300), no_control_chars],
    )
    remove_seal = BooleanField(_l("Remove the seal"))
    signature = FileField(_l("Signature image (PNG, JPEG or WebP; dark ink on white or transparent)"))
    remove_signature = BooleanField(_l("Remove the signature"))
    submit = SubmitField(_l("Save branding"))
