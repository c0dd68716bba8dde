"""Shape checks for the preferences and unsubscribe forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SubmitField


class PreferencesForm(FlaskForm):
    tips = BooleanField(_l("Welcome and getting started"))
    reminders = BooleanField(_l("Certificate expiry reminders"))
    nudges = BooleanField(_l("Reminders to continue a course"))
    employer_alerts = BooleanField(_l("Alerts about saved candidates"))
    submit = SubmitField(_l("Save my email choices"))
