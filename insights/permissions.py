"""Pure predicates about learning records and reports, shared by views and templates."""

from __future__ import annotations

from accounts.permissions import is_admin


def can_view_insights(user) -> bool:
    """The site-wide dashboard, its charts and CSV tables, quiz item analysis and the xAPI export (/admin/…)."""
    return is_admin(user)


def can_view_learner_records(user) -> bool:
    """One learner's whole record: progress, attempts, certificates and audit trail (/admin/learners/<id>)."""
    return is_admin(user)
