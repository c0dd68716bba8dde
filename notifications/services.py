"""Who gets which email, and when. Services flush, never commit; the caller commits (a view or a job).

Only confirmed addresses get notifications (the confirmation link itself and password resets go out before).
Transactional notices (certificate issued, revoked, reinstated, reissued, suspended, suspension lifted) go out
whatever the preferences; the other categories follow them and carry a one-click unsubscribe link (RFC 8058).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from accounts.models import User
from core.errors import DomainError
from core.extensions import db
from core.mail import TRANSACTIONAL, Notification, queue_mail
from courses.models import Enrollment
from credentials.ids import format_public_id
from credentials.models import Certificate, CertificateStatus
from credentials.moments import support_email
from credentials.programs import parts_of
from notifications.models import NotificationPreference
from orgs.models import Membership, Organization, OrgStatus, SavedCandidate

UNSUBSCRIBE_SALT = "unsubscribe"
REMINDER_DAYS = (7, 30, 60)  # the tightest threshold reached is the one sent


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    description: str
    default: bool
    applies: Callable[[User], bool] | None = None  # None: everyone

    def applies_to(self, user: User) -> bool:
        return self.applies is None or self.applies(user)


def _keeps_candidates(user: User) -> bool:
    """Admins and staff of an organization (employers keep candidate lists there)."""
    return (
        user.is_admin
        or db.session.scalar(select(Membership.id).where(Membership.user_id == user.id).limit(1)) is not None
    )


CATEGORIES: dict[str, Category] = {
    c.id: c
    for c in (
        Category("tips", _l("Welcome and getting started"), _l("A welcome when you confirm your address."), True),
        Category(
            "reminders",
            _l("Certificate expiry reminders"),
            _l("60, 30 and 7 days before a certificate of yours expires, with a link to renew it."),
            True,
        ),
        Category(
            "nudges",
            _l("Reminders to continue a course"),
            _l("When you have not worked on a course you started for two weeks. Off unless you turn it on."),
            False,
        ),
        Category(
            "employer_alerts",
            _l("Alerts about saved candidates"),
            _l("When a certificate on your organization's candidates list is revoked or expires."),
            True,
            _keeps_candidates,
        ),
    )
}


def categories_for(user: User) -> list[Category]:
    return [c for c in CATEGORIES.values() if c.applies_to(user)]


def preferences(user: User) -> dict[str, bool]:
    """Every category that applies to the user → whether they get it."""
    chosen = dict(
        db.session.execute(
            select(NotificationPreference.category, NotificationPreference.enabled).where(
                NotificationPreference.user_id == user.id
            )
        ).all()
    )
    return {c.id: chosen.get(c.id, c.default) for c in categories_for(user)}


def wants(user: User, category: str) -> bool:
    if category == TRANSACTIONAL:
        return True
    chosen = db.session.get(NotificationPreference, (user.id, category))
    return chosen.enabled if chosen is not None else CATEGORIES[category].default


def set_preference(user: User, category: str, enabled: bool, *, now: datetime) -> bool:
    """Record a choice. Returns whether it changed. Raises DomainError for an unknown category. Flush only."""
    if category not in CATEGORIES or not CATEGORIES[category].applies_to(user):
        raise DomainError(_("There is no such kind of email."))
    row = db.session.get(NotificationPreference, (user.id, category))
    before = row.enabled if row is not None else CATEGORIES[category].default
    if row is None:
        db.session.add(NotificationPreference(user_id=user.id, category=category, enabled=enabled, updated_at=now))
    elif row.enabled != enabled:
        row.enabled, row.updated_at = enabled, now
    db.session.flush()
    return before != enabled


def save_preferences(user: User, choices: dict[str, bool], *, now: datetime) -> int:
    """Record the preferences form; returns how many categories changed. Flush only."""
    return sum(set_preference(user, c.id, bool(choices.get(c.id)), now=now) for c in categories_for(user))


# ---- one-click unsubscribe (RFC 8058) --------------------------------------------------------------------


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(user_id: int, category: str) -> str:
    """A signed token naming the person and the category (an HMAC: nobody can make one for someone else)."""
    return _signer().dumps([user_id, category])


def read_unsubscribe_token(token: str) -> tuple[User, Category]:
    """The person and category of a token. Raises DomainError for a forged, mangled or outdated one."""
    try:
        user_id, category = _signer().loads(token)
    except (BadSignature, ValueError, TypeError):
        raise DomainError(
            _("This unsubscribe link is not valid. Manage your emails from your account instead.")
        ) from None
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or category not in CATEGORIES:
        raise DomainError(_("This unsubscribe link is not valid. Manage your emails from your account instead."))
    return user, CATEGORIES[category]


def unsubscribe(user: User, category: Category, *, now: datetime) -> None:
    """Turn the category off (idempotent). Flush only."""
    set_preference(user, category.id, False, now=now)


# ---- queuing notifications ---------------------------------------------------------------------------


def absolute(endpoint: str, **values) -> str:
    """A public URL from the configured base address (jobs have no request; never trust a Host header)."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["ISSUER_URL"].rstrip("/") + path


def notify(
    recipient: User, template: str, *, key: str, category: str = TRANSACTIONAL, **context
) -> Notification | None:
    """Queue email/<template> to the user for event ``key`` unless they cannot or chose not to get it.

    Returns None when nothing is queued: inactive account, unconfirmed address, the category turned off, or
    this event already mailed to them. Flush only; the caller commits.
    """
    if not recipient.active or not recipient.is_email_verified or not wants(recipient, category):
        return None
    unsubscribe_url = None
    if category != TRANSACTIONAL:
        unsubscribe_url = absolute("notifications.unsubscribe", token=unsubscribe_token(recipient.id, category))
    context.setdefault("user", recipient)
    return queue_mail(
        to=recipient.email,
        template=template,
        key=key,
        category=category,
        user_id=recipient.id,
        unsubscribe_url=unsubscribe_url,
        **context,
    )


def _certificate_context(certificate: Certificate) -> dict:
    return {
        "certificate": certificate,
        "display_id": format_public_id(certificate.public_id),
        "verify_url": absolute("credentials.verify_certificate", public_id=format_public_id(certificate.public_id)),
        "mine_url": absolute("credentials.my_certificate", public_id=format_public_id(certificate.public_id)),
        "contact": support_email(),
    }


def certificate_issued(certificate: Certificate) -> Notification | None:
    holder = db.session.get(User, certificate.user_id)
    return notify(
        holder, "certificate_issued", key=f"certificate-issued:{certificate.id}", **_certificate_context(certificate)
    )


def certificate_changed(certificate: Certificate, change: str, *, now: datetime) -> list[Notification]:
    """The holder's notice of a revocation, reinstatement or reissue, and employers' alerts on revocation.

    A reinstated certificate that is suspended (a program certificate whose stacked course certificate still is)
    is said to be so, until when, and because of which course certificates. Raises nothing. Flush only."""
    holder = db.session.get(User, certificate.user_id)
    context = _certificate_context(certificate)
    if change == "reinstated" and certificate.status_at(now) is CertificateStatus.SUSPENDED:
        context["suspended_by"] = [
            {"title": p.course_title, "id": format_public_id(p.public_id)}
            for p in parts_of(certificate)
            if p.revoked_at is None and p.suspended_at_time(now)
        ]
        context["suspended"], context["reinstated_at"] = True, now
    reason = certificate.revocation_reason.label if certificate.revocation_reason else ""
    stamp = {"revoked": certificate.revoked_at, "reinstated": now, "reissued": certificate.issued_at}[change]
    event = f"certificate-{change}:{certificate.id}:{stamp.isoformat() if stamp else certificate.revision}"
    sent = [notify(holder, "certificate_status", key=event, change=change, reason=reason, **context)]
    if change == "revoked":
        sent += _alert_employers(certificate, "revoked", key=f"candidate-{event}", reason=reason)
    return [n for n in sent if n is not None]


def certificate_suspension(
    certificate: Certificate, change: str, *, programs: list[Certificate], now: datetime
) -> Notification | None:
    """The holder's one notice that a certificate was suspended or its suspension lifted (``change``), naming the
    program certificates that followed it (``programs``, the cascade). Once per suspension and per lift."""
    holder = db.session.get(User, certificate.user_id)
    stamp = certificate.suspended_at if change == "suspended" else now
    return notify(
        holder,
        "certificate_suspension",
        key=f"certificate-{change}:{certificate.id}:{stamp.isoformat()}",
        change=change,
        programs=[{"title": p.course_title, "id": format_public_id(p.public_id)} for p in programs],
        lifted_at=now,
        status=certificate.status_at(now).value,
        **_certificate_context(certificate),
    )


def _alert_employers(certificate: Certificate, change: str, *, key: str, reason: str = "") -> list[Notification]:
    """Every staff member of each approved organization that saved this certificate (once per person)."""
    staff = db.session.execute(
        select(User, Organization)
        .join(Membership, Membership.user_id == User.id)
        .join(Organization, Organization.id == Membership.organization_id)
        .join(SavedCandidate, SavedCandidate.organization_id == Organization.id)
        .where(SavedCandidate.certificate_id == certificate.id, Organization.status == OrgStatus.APPROVED)
        .order_by(User.id, Organization.id)
    ).all()
    context = _certificate_context(certificate)
    out = []
    for employer, org in staff:
        row = notify(
            employer,
            "candidate_alert",
            key=key,
            category="employer_alerts",
            employer=employer,
            org_name=org.name,
            change=change,
            reason=reason,
            candidates_url=absolute("orgs.candidates", slug=org.slug),
            **context,
        )
        if row is not None:
            out.append(row)
    return out


# ---- the daily scan ----------------------------------------------------------------------------------


def _already(keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.update(db.session.scalars(select(Notification.key).where(Notification.key.in_(chunk))))
    return found


def expiry_reminders(now: datetime) -> int:
    """Remind holders 60, 30 and 7 days before expiry (the tightest threshold reached, once per expiry date).

    Running it twice, or a day late, sends nothing twice: the key names the certificate, its expiry and the
    threshold. Returns how many were queued. Flush only.
    """
    horizon = now + timedelta(days=max(REMINDER_DAYS))
    certificates = list(
        db.session.scalars(
            select(Certificate)
            .where(Certificate.revoked_at.is_(None), Certificate.expires_at > now, Certificate.expires_at <= horizon)
            .order_by(Certificate.id)
        )
    )
    plans = []
    for certificate in certificates:
        days = math.ceil((certificate.expires_at - now) / timedelta(days=1))
        threshold = min(t for t in REMINDER_DAYS if days <= t)
        key = f"expiry-reminder:{certificate.id}:{certificate.expires_at.date().isoformat()}:{threshold}"
        plans.append((certificate, days, key))
    done = _already([key for _certificate, _days, key in plans])
    queued = 0
    for certificate, days, key in plans:
        if key in done:
            continue
        holder = db.session.get(User, certificate.user_id)
        context = _certificate_context(certificate)
        row = notify(
            holder,
            "expiry_reminder",
            key=key,
            category="reminders",
            days=days,
            renew_url=context["mine_url"],
            **context,
        )
        queued += row is not None
    return queued


def candidate_expiries(now: datetime, *, window: timedelta = timedelta(days=7)) -> int:
    """Alert employers about saved candidates whose certificate expired in the last ``window`` (a missed day
    is caught up). Once per certificate expiry and employer. Returns how many were queued. Flush only."""
    certificates = list(
        db.session.scalars(
            select(Certificate)
            .where(
                Certificate.revoked_at.is_(None),
                Certificate.expires_at <= now,
                Certificate.expires_at > now - window,
                Certificate.id.in_(select(SavedCandidate.certificate_id)),
            )
            .order_by(Certificate.id)
        )
    )
    queued = 0
    for certificate in certificates:
        key = f"candidate-expired:{certificate.id}:{certificate.expires_at.isoformat()}"
        queued += len(_alert_employers(certificate, "expired", key=key))
    return queued


def inactivity_nudges(now: datetime) -> int:
    """Nudge learners who opted in and left a course unfinished for INACTIVITY_DAYS: once per pause (the key
    carries the day of their last activity). Returns how many were queued. Flush only."""
    from courses.services import progress_for

    days = current_app.config["INACTIVITY_DAYS"]
    opted_in = select(NotificationPreference.user_id).where(
        NotificationPreference.category == "nudges", NotificationPreference.enabled.is_(True)
    )
    enrollments = list(
        db.session.scalars(
            select(Enrollment)
            .where(
                Enrollment.completed_at.is_(None),
                Enrollment.last_activity_at <= now - timedelta(days=days),
                Enrollment.last_activity_at > now - timedelta(days=days * 4),  # no nagging of long-gone learners
                Enrollment.user_id.in_(opted_in),
            )
            .options(selectinload(Enrollment.course))
            .order_by(Enrollment.id)
        )
    )
    plans = [(e, f"nudge:{e.id}:{e.last_activity_at.date().isoformat()}") for e in enrollments]
    done = _already([key for _item, key in plans])
    queued = 0
    for enrollment, key in plans:
        if key in done:
            continue
        user = db.session.get(User, enrollment.user_id)
        course = enrollment.course
        progress = progress_for(enrollment, course)
        row = notify(
            user,
            "inactivity_nudge",
            key=key,
            category="nudges",
            user=user,
            course_title=course.title,
            course_url=absolute("courses.course", slug=course.slug),
            days=(now - enrollment.last_activity_at).days,
            done=progress.done_steps,
            total=progress.total_steps,
        )
        queued += row is not None
    return queued


def unverified_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(User.email_verified_at.is_(None))) or 0
