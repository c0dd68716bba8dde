"""The email preferences page and the one-click unsubscribe endpoint (RFC 8058)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from core.database import utcnow
from core.errors import DomainError
from core.extensions import csrf, db, limiter
from core.forms import ButtonForm
from core.mail import Notification
from notifications import services
from notifications.forms import PreferencesForm

bp = Blueprint("notifications", __name__)


@bp.route("/account/notifications", methods=["GET", "POST"])
@login_required
def preferences():
    user = current_user._get_current_object()
    categories = services.categories_for(user)
    current = services.preferences(user)
    form = PreferencesForm(data=current)
    if form.validate_on_submit():
        choices = {c.id: bool(form[c.id].data) for c in categories}
        changed = services.save_preferences(user, choices, now=utcnow())
        db.session.commit()
        flash(_("Your email choices are saved.") if changed else _("Nothing changed."), "success")
        return redirect(url_for("notifications.preferences"), 303)
    recent = db.session.scalars(
        select(Notification).where(Notification.user_id == user.id).order_by(Notification.id.desc()).limit(10)
    ).all()
    return render_template(
        "notifications/preferences.html",
        form=form,
        categories=categories,
        recent=recent,
        confirm_form=ButtonForm(),
    ), 422 if form.errors else 200


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_UNSUBSCRIBE"])
@csrf.exempt  # RFC 8058: mail clients POST "List-Unsubscribe=One-Click" with no cookie; the signed token is the proof
def unsubscribe(token: str):
    try:
        user, category = services.read_unsubscribe_token(token)
    except DomainError as error:
        db.session.rollback()
        return render_template("notifications/unsubscribe.html", problem=error.message), 400
    if request.method == "POST":
        services.unsubscribe(user, category, now=utcnow())
        db.session.commit()
        return render_template("notifications/unsubscribe.html", done=True, category=category, email=user.email)
    return render_template(
        "notifications/unsubscribe.html", category=category, email=user.email, form=ButtonForm(), token=token
    )
