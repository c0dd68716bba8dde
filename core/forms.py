"""The one form every "just a button" POST uses (revoke, approve, delete, leave, enroll, log out everywhere…).

It has no fields: the point is its CSRF token, so that even a bare button goes through a FlaskForm. Templates
render ``form.hidden_tag()`` and write their own ``<button>`` with the words that fit the action.
"""

from __future__ import annotations

from flask_wtf import FlaskForm


class ButtonForm(FlaskForm):
    """A POST with nothing but its CSRF token."""
