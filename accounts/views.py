"""Account pages and user administration. Views: load → authorize → validate → service → commit."""

from __future__ import annotations

import json
import secrets
import time

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import force_locale, refresh
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, or_, select
from wtforms import SelectChoice

from accounts import services, throttle
from accounts.forms import (
    ChangePasswordForm,
    ForgotPasswordForm,
    LanguageForm,
    LoginForm,
    ProfileForm,
    RegisterForm,
    ResetPasswordForm,
    RoleForm,
    SwitchLanguageForm,
    UserSearchForm,
)
from accounts.models import Role, User
from accounts.permissions import can_manage_users, can_read_audit_log, permission_required
from accounts.redirects import safe_next
from core.audit import AuditEvent
from core.csv import csv_response
from core.database import utcnow
from core.errors import N_, DomainError, form_error
from core.extensions import db, limiter
from core.forms import ButtonForm
from core.i18n import LANG_COOKIE, LANG_COOKIE_MAX_AGE, current_language, language_name, supported_languages
from core.mail import queue_mail, send_mail

bp = Blueprint("accounts", __name__)
admin_bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")


def _limit(key: str):
    return limiter.limit(lambda: current_app.config[key], methods=["POST"])


def _login(user: User, remember: bool) -> None:
    """Start a recorded login (its token goes into the session and remember-me cookies) and commit it."""
    services.start_login(user, now=utcnow())
    db.session.commit()
    session.clear()  # no session data survives a change of identity
    login_user(user, remember=remember)


@bp.route("/register", methods=["GET", "POST"])
@_limit("RATELIMIT_REGISTER")
def register():
    if current_user.is_authenticated:
        return redirect(url_for("core.index"))
    form = RegisterForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        form.email.data = (request.args.get("email") or "")[:254] or None
    if form.validate_on_submit():
        try:
            user = services.register_user(
                email=form.email.data, name=form.name.data, password=form.password.data, now=utcnow()
            )
        except services.EmailTaken as taken:
            # answered exactly like a new account, so the form cannot tell who has one; the owner hears of it
            db.session.rollback()
            owner = services.active_user_by_email(taken.email)
            if owner is not None:
                _mail_account_holder(owner, "accounts/email/already_registered.txt", N_("You already have an account"))
            return _registered(form)
        except DomainError as error:
            db.session.rollback()
            form_error(form, error)
        else:
            # the language they signed up in is the one their emails (and later visits) use
            services.set_locale(user, current_language(), now=utcnow())
            _queue_verification(user, "registration")
            db.session.commit()
            return _registered(form)  # the same answer as for a taken email: log in next (issue 12, item 6)
    return render_template("accounts/register.html", form=form), 422 if form.errors else 200


def _registered(form):
    flash(
        _(
            "We have sent a message to %(email)s. If the account is new, it is ready: log in with your email and "
            "password.",
            email=form.email.data.strip().lower(),
        ),
        "info",
    )
    return redirect(url_for("accounts.login", next=safe_next(form.next.data) or None), 303)


def _mail_account_holder(user: User, template: str, subject: str) -> None:
    """Mail an account holder about their account (after commit; a transport failure is logged)."""
    base = current_app.config["ISSUER_URL"].rstrip("/")
    with force_locale(user.locale or current_language()):
        body = render_template(
            template,
            user=user,
            login_url=base + url_for("accounts.login"),
            reset_url=base + url_for("accounts.forgot_password"),
        )
        subject = f"{_(subject)} · {current_app.config['ISSUER_NAME']}"
    try:
        send_mail(user.email, subject, body)
    except OSError:
        current_app.logger.exception("could not send mail to an account holder")


def _queue_verification(user: User, why: str) -> None:
    """Queue the verification mail in the current transaction (sent after the commit)."""
    token = services.email_verification_token(user, secret_key=current_app.config["SECRET_KEY"])
    link = current_app.config["ISSUER_URL"].rstrip("/") + url_for("accounts.verify_email", token=token)
    key = f"verify-email:{user.id}:{why}" if why == "registration" else f"verify-email:{user.id}:{secrets.token_hex(8)}"
    queue_mail(to=user.email, template="verify_email", key=key, user_id=user.id, user=user, link=link, days=7)


@bp.get("/verify-email/<token>")
@limiter.limit(lambda: current_app.config["RATELIMIT_VERIFY_EMAIL"])
def verify_email(token: str):
    try:
        user, first = services.verify_email(token, now=utcnow(), secret_key=current_app.config["SECRET_KEY"])
    except DomainError as error:
        db.session.rollback()
        return render_template("accounts/verify_email.html", problem=error.message), 400
    db.session.commit()
    return render_template("accounts/verify_email.html", verified_user=user, first=first)


@bp.post("/account/verify-email")
@login_required
@limiter.limit(lambda: current_app.config["RATELIMIT_VERIFY_EMAIL"])
def resend_verification():
    if not ButtonForm().validate_on_submit():
        abort(400)
    if current_user.is_email_verified:
        flash(_("Your email address is already confirmed."), "info")
    else:
        _queue_verification(current_user, "resend")
        db.session.commit()
        flash(_("We sent a new link to %(email)s. It works for 7 days.", email=current_user.email), "success")
    return redirect(url_for("accounts.profile"), 303)


@bp.route("/login", methods=["GET", "POST"])
@_limit("RATELIMIT_LOGIN")
def login():
    next_url = safe_next(request.values.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("core.index"))
    form = LoginForm(next=next_url)
    if form.validate_on_submit():
        wait = throttle.locked_for(form.email.data)
        if wait:  # refused before the password is even checked, right or wrong
            form.form_errors.append(throttle.wait_message(wait))
            return render_template("accounts/login.html", form=form), 429
        user = services.authenticate(email=form.email.data, password=form.password.data, now=utcnow())
        if user is None:
            db.session.rollback()
            form.form_errors.append(_("That email and password do not match an active account."))
            if throttle.record_failure(form.email.data):
                _tell_owner_about_failed_logins(form.email.data)
        else:
            db.session.commit()
            throttle.record_success(form.email.data)
            _login(user, remember=form.remember.data)
            flash(_("Welcome back, %(name)s.", name=user.name), "success")
            return redirect(safe_next(form.next.data) or url_for("core.index"))
    return render_template("accounts/login.html", form=form), 422 if form.errors or form.form_errors else 200


def _tell_owner_about_failed_logins(email: str) -> None:
    owner = services.active_user_by_email(email)
    if owner is None:
        return
    with force_locale(owner.locale or current_language()):
        body = render_template(
            "accounts/email/failed_logins.txt",
            user=owner,
            count=throttle.FREE_FAILURES,
            reset_url=current_app.config["ISSUER_URL"].rstrip("/") + url_for("accounts.forgot_password"),
        )
        subject = _("Failed logins to your %(issuer)s account", issuer=current_app.config["ISSUER_NAME"])
    try:
        send_mail(owner.email, subject, body)
    except OSError:
        current_app.logger.exception("could not send the failed-logins mail")


@bp.post("/logout")
@login_required
def logout():
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    # ends this login on the server: a copied session or remember-me cookie no longer works
    services.end_login(current_user, now=utcnow())
    db.session.commit()
    session.clear()
    logout_user()  # after clear(): it marks the remember-me cookie for deletion
    flash(_("You have been logged out."), "info")
    return redirect(url_for("core.index"))


@bp.route("/forgot-password", methods=["GET", "POST"])
@_limit("RATELIMIT_RESET")
def forgot_password():
    form = ForgotPasswordForm()
    started = time.monotonic()
    if form.validate_on_submit():
        cfg = current_app.config
        reset = services.request_password_reset(
            email=form.email.data, now=utcnow(), secret_key=cfg["SECRET_KEY"], max_age=cfg["PASSWORD_RESET_MAX_AGE"]
        )
        db.session.commit()
        base = cfg["ISSUER_URL"].rstrip("/")  # links use the configured public address, never the Host header
        # The same work for known and unknown addresses (a signed token, a rendered message, one mail), so the
        # answer's timing does not tell which accounts exist: 34 ms against 10 ms before.
        issuer = cfg["ISSUER_NAME"]
        if reset is not None:
            link = base + url_for("accounts.reset_password", token=reset.token)
            with force_locale(reset.user.locale or current_language()):
                to, subject = reset.user.email, _("Reset your %(issuer)s password", issuer=issuer)
                body = render_template(
                    "accounts/email/reset.txt", user=reset.user, link=link, minutes=cfg["PASSWORD_RESET_MAX_AGE"] // 60
                )
        else:
            services.unused_reset_token(cfg["SECRET_KEY"])
            to, subject = services.normalize_email(form.email.data), _("About your %(issuer)s password", issuer=issuer)
            body = render_template(
                "accounts/email/no_account.txt",
                register_url=base + url_for("accounts.register"),
                reset_url=base + url_for("accounts.forgot_password"),
            )
        try:
            send_mail(to, subject, body)
        except OSError:
            current_app.logger.exception("could not send the password reset mail")
        # a database write happens only for real accounts: pad every answer to the same floor
        time.sleep(max(0.0, cfg["PASSWORD_RESET_MIN_SECONDS"] - (time.monotonic() - started)))
        # the same answer for known and unknown emails
        flash(
            _(
                "If an account uses that email, we have sent it a link to reset the password. The link works once, "
                "for one hour."
            ),
            "info",
        )
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot_password.html", form=form), 422 if form.errors else 200


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@_limit("RATELIMIT_RESET")
def reset_password(token: str):
    cfg = current_app.config
    args = {"now": utcnow(), "secret_key": cfg["SECRET_KEY"], "max_age": cfg["PASSWORD_RESET_MAX_AGE"]}
    try:
        services.check_reset_token(token, **args)
    except DomainError as error:
        return render_template("accounts/reset_invalid.html", message=error.message), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user = services.reset_password(token, new=form.password.data, **args)
        except DomainError as error:
            db.session.rollback()
            form_error(form, error)
        else:
            db.session.commit()
            session.clear()
            logout_user()
            flash(
                _("Your password has been changed, %(name)s. Please log in with the new one.", name=user.name),
                "success",
            )
            return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_password.html", form=form), 422 if form.errors or form.form_errors else 200


@bp.route("/account", methods=["GET", "POST"])
@login_required
def profile():
    form = ProfileForm(obj=current_user)
    password_form = ChangePasswordForm(prefix="pw")
    if form.validate_on_submit():
        services.update_profile(current_user, name=form.name.data, legal_name=form.legal_name.data, now=utcnow())
        db.session.commit()
        flash(_("Your profile has been saved."), "success")
        return redirect(url_for("accounts.profile"))
    return _profile_page(form, password_form)


def _profile_page(form, password_form, language_form=None):
    language_form = language_form or _language_form()
    status = 422 if form.errors or password_form.errors or password_form.form_errors or language_form.errors else 200
    return render_template(
        "accounts/profile.html",
        form=form,
        password_form=password_form,
        confirm_form=ButtonForm(),
        language_form=language_form,
    ), status


def _language_form() -> LanguageForm:
    form = LanguageForm(prefix="lang", data={"locale": current_user.locale or ""})
    # each language in its own name, marked with its code so a screen reader pronounces it right
    form.locale.choices = [SelectChoice("", _("Same as my browser"))] + [
        SelectChoice(c, language_name(c), render_kw={"lang": c}) for c in supported_languages()
    ]
    return form


@bp.post("/account/language")
@login_required
def save_language():
    form = _language_form()
    if form.validate_on_submit():
        try:
            services.set_locale(current_user, form.locale.data or None, now=utcnow())
        except DomainError as error:
            db.session.rollback()
            form_error(form, error)
        else:
            db.session.commit()
            refresh()  # the confirmation is already in the new language
            flash(_("Your language has been saved."), "success")
            response = redirect(url_for("accounts.profile"), 303)
            _remember_language(response, form.locale.data or None)
            return response
    return _profile_page(ProfileForm(obj=current_user), ChangePasswordForm(prefix="pw"), form)


@bp.route("/language/<code>", methods=["GET", "POST"])
def set_language(code: str):
    """The language switcher. A GET (the link anonymous visitors follow) only sets the ``lang`` cookie, so it
    changes nothing a forged link could harm; a POST (the signed-in header's button, CSRF-checked) also saves
    the person's preference, which outranks the cookie. Either way back to ``next`` (strict helper)."""
    if code not in supported_languages():
        abort(404)
    target = safe_next(request.values.get("next")) or url_for("core.index")
    if request.method == "POST":
        form = SwitchLanguageForm()
        if not form.validate_on_submit():
            abort(400)
        if current_user.is_authenticated:
            services.set_locale(current_user, code, now=utcnow())
            db.session.commit()
    response = redirect(target, 303)
    _remember_language(response, code)
    return response


def _remember_language(response, code: str | None) -> None:
    if code is None:
        response.delete_cookie(LANG_COOKIE)
        return
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    response.set_cookie(LANG_COOKIE, code, max_age=LANG_COOKIE_MAX_AGE, samesite="Lax", secure=secure, httponly=True)


@bp.post("/account/password")
@login_required
def change_password():
    password_form = ChangePasswordForm(prefix="pw")
    if password_form.validate_on_submit():
        remember = bool(request.cookies.get(current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")))
        try:
            services.change_password(
                current_user, current=password_form.current_password.data, new=password_form.password.data, now=utcnow()
            )
        except DomainError as error:
            db.session.rollback()
            form_error(password_form, error)
        else:
            user = current_user._get_current_object()
            db.session.commit()
            _login(user, remember=remember)  # this session continues; all others end
            flash(_("Your password has been changed. Other devices have been logged out."), "success")
            return redirect(url_for("accounts.profile"))
    return _profile_page(ProfileForm(obj=current_user), password_form)


@bp.post("/account/logout-everywhere")
@login_required
def logout_everywhere():
    if not ButtonForm().validate_on_submit():
        abort(400)
    services.logout_everywhere(current_user, now=utcnow())
    db.session.commit()
    session.clear()
    logout_user()  # after clear(): it marks the remember-me cookie for deletion
    flash(_("You have been logged out on every device."), "info")
    return redirect(url_for("accounts.login"))


# ---- user administration -------------------------------------------------------------


@admin_bp.get("/")
@permission_required(can_manage_users)
def list_users():
    search = UserSearchForm(request.args)
    role = Role(search.role.data) if search.validate() and search.role.data else None
    stmt = services.search_users(search.q.data if not search.q.errors else None, role=role)
    page = db.paginate(
        stmt, page=min(request.args.get("page", 1, type=int), 10_000), per_page=25, max_per_page=100, error_out=False
    )
    return render_template(
        "admin/users.html", search=search, page=page, role_form=RoleForm(), confirm_form=ButtonForm()
    )


@admin_bp.post("/<int:user_id>/role")
@permission_required(can_manage_users)
def change_role(user_id: int):
    target = db.get_or_404(User, user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        flash(_("Choose one of the listed roles."), "error")
        return redirect(url_for("admin_users.list_users")), 303
    try:
        changed = services.change_role(current_user, target, Role(form.role.data), now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("admin_users.list_users")), 303
    db.session.commit()
    if changed:
        flash(_("%(name)s is now %(role)s.", name=target.name, role=target.role.label.lower()), "success")
    return redirect(url_for("admin_users.list_users", q=target.email)), 303


def _set_active(user_id: int, active: bool):
    target = db.get_or_404(User, user_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        changed = services.set_active(current_user, target, active, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("admin_users.list_users")), 303
    db.session.commit()
    if changed:
        if active:
            flash(_("%(name)s's account has been reactivated.", name=target.name), "success")
        else:
            flash(_("%(name)s's account has been deactivated and logged out everywhere.", name=target.name), "success")
    return redirect(url_for("admin_users.list_users", q=target.email)), 303


@admin_bp.post("/<int:user_id>/deactivate")
@permission_required(can_manage_users)
def deactivate(user_id: int):
    return _set_active(user_id, False)


@admin_bp.post("/<int:user_id>/reactivate")
@permission_required(can_manage_users)
def reactivate(user_id: int):
    return _set_active(user_id, True)


# ---- audit log (read-only: nothing in the site edits it) ------------------------------------------

audit_bp = Blueprint("audit", __name__, url_prefix="/admin/audit")


@audit_bp.get("/")
@permission_required(can_read_audit_log)
def audit_log():
    q = (request.args.get("q") or "").strip()[:100]
    action = (request.args.get("action") or "").strip()[:64]
    stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if q:  # % _ and \ in a search are text, not wildcards
        text = q.lower()
        stmt = stmt.where(
            or_(
                func.lower(AuditEvent.summary).contains(text, autoescape=True),
                func.lower(AuditEvent.actor_label).contains(text, autoescape=True),
                func.lower(AuditEvent.target_id).contains(text, autoescape=True),
            )
        )
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action, autoescape=True))
    if request.args.get("format") == "csv":
        header = ["at", "actor", "action", "target_type", "target_id", "summary", "detail"]
        rows = (
            (
                e.at.isoformat(),
                e.actor_label,
                e.action,
                e.target_type,
                e.target_id,
                e.summary,
                json.dumps(e.detail, ensure_ascii=False),
            )
            for e in db.session.scalars(stmt.limit(100_000))
        )
        return csv_response("audit-log.csv", header, rows)
    page = db.paginate(
        stmt, page=min(request.args.get("page", 1, type=int), 10_000), per_page=50, max_per_page=200, error_out=False
    )
    return render_template("admin/audit.html", page=page, q=q, action=action)
