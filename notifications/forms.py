"""Shape checks for the preferences and unsubscribe forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SubmitField


class PreferencesForm(FlaskForm):
    tips = BooleanField("Welcome and getting started")
    reminders = BooleanField("Certificate expiry reminders")
    nudges = BooleanField("Reminders to continue a course")
    employer_alerts = BooleanField("Alerts about saved candidates")
    submit = SubmitField("Save my email choices")
