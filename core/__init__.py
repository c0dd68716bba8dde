"""The application factory: wiring only, no domain rules, no side effects."""

from __future__ import annotations

import logging
from inspect import CO_COROUTINE
from typing import Any

from flask import Flask, redirect, request, url_for
from flask_babel import gettext, lazy_gettext

from core import contentcache, formrender, header, i18n, lane, queue, storage
from core.config import load_config
from core.database import commit_read_only_transactions, ping_when_idle, utcnow
from core.errors import register_error_handlers, wants_json
from core.extensions import csrf, db, limiter, login_manager, migrate
from core.security import register_input_guards, register_security_headers
from core.sessions import SessionInterface


class AcademyFlask(Flask):
    """Flask, with ``ensure_sync`` answering at once for plain functions: Flask asks it for every view, hook and
    context processor of every request (about ten a page), and each time ``inspect.iscoroutinefunction`` unwrapped
    the callable to read its code flags. A callable whose code says it is not a coroutine is returned as is,
    as Flask would; anything else (partials, async views) goes to Flask's own check."""

    def ensure_sync(self, func):
        code = getattr(func, "__code__", None)
        # (Python 3.12's inspect.markcoroutinefunction sets _is_coroutine_marker: such a function goes to Flask)
        if code is not None and not code.co_flags & CO_COROUTINE and not hasattr(func, "_is_coroutine_marker"):
            return func
        return super().ensure_sync(func)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults → instance/config.py → FLASK_* environment → ``config``.

    Never creates tables, migrates, prompts or touches the network.
    Raises core.config.ConfigError when the configuration is unsafe.
    """
    app = AcademyFlask(
        __name__.split(".")[0],
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    load_config(app, config)
    app.session_interface = SessionInterface()  # Flask's cookie session, its serializer built once (core/sessions.py)
    formrender.install()  # WTForms' attribute builder without Markup.format per attribute (core/formrender.py)
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    if not app.logger.handlers or app.config["APP_ENV"] == "development":
        logging.basicConfig(level=logging.INFO)
        app.logger.setLevel(logging.INFO)

    db.init_app(app)
    _ping_idle_connections(app)
    with app.app_context():
        commit_read_only_transactions(db.engine)  # PostgreSQL keeps its prepared statements (core/database.py)
    migrate.init_app(app, db, directory=_migrations_dir(app), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    i18n.init_app(app)
    limiter.init_app(app)
    # every rate limit here is a route decorator (login, register, verify, public writes), which checks itself;
    # the limiter's before-request hook only looks for default and blueprint limits, and there are none, so
    # it is taken off instead of running on every request (tests/test_security.py, test_hardening.py and
    # test_verification.py check the limits still bite)
    # (with RATELIMIT_ENABLED false Flask-Limiter registers no hook at all)
    hooks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit in hooks:
        hooks.remove(limiter._check_request_limit)
    _limiter_hooks_only_where_limited(app)
    _init_login(app)
    queue.init_app(app)
    contentcache.init_app(app)
    lane.install(app, lane.PageLane)  # visitors' kept pages answered in front of Flask (core/lane.py)
    app.jinja_env.globals["cached_site_header"] = header.cached_site_header  # base.html
    storage.init_app(app)

    register_error_handlers(app)
    register_security_headers(app)
    register_input_guards(app)
    _register_blueprints(app)
    _register_commands(app)
    return app


def _limiter_hooks_only_where_limited(app: Flask) -> None:
    """Flask-Limiter's after-request hook (rate limit headers, conditional deductions) and teardown (its context
    reset) run only for a request that used the limiter: one whose route decorator checked a limit made its
    per-request context. A request without that context has no limit to report, deduct or reset, so they did
    nothing there but make the context (every request paid for it)."""
    from flask.globals import request_ctx

    def used_limiter() -> bool:
        return hasattr(request_ctx._get_current_object(), "_limiter_request_context")

    def wrap(hook):
        def only_where_limited(value):
            return hook(value) if used_limiter() else value

        return only_where_limited

    def wrap_teardown(hook):
        def only_where_limited(error=None):
            if used_limiter():
                hook(error)

        return only_where_limited

    after = app.after_request_funcs.get(None, [])
    for index, hook in enumerate(after):
        if getattr(hook, "func", None) is getattr(type(limiter), "_Limiter__inject_headers", None):
            after[index] = wrap(hook)
    teardown = app.teardown_request_funcs.get(None, [])
    for index, hook in enumerate(teardown):
        if hook == getattr(limiter, "_Limiter__release_context", None):
            teardown[index] = wrap_teardown(hook)


def _ping_idle_connections(app: Flask) -> None:
    seconds = app.config.get("DATABASE_PING_AFTER_IDLE")
    if seconds is None or (app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}).get("pool_pre_ping"):
        return  # no ping asked for, or SQLAlchemy pings on every checkout itself
    with app.app_context():
        ping_when_idle(db.engine, float(seconds))


def _migrations_dir(app: Flask) -> str:
    import os

    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


def _init_login(app: Flask) -> None:
    from accounts.services import load_session_user

    login_manager.init_app(app)
    # "strong", as the foundation issue asks: a session seen from another address or browser is dropped
    # (a phone changing networks logs in again); the per-user session version handles the rest
    login_manager.session_protection = "strong"
    login_manager.login_view = "accounts.login"
    login_manager.login_message = lazy_gettext("Please log in to continue.")
    login_manager.login_message_category = "info"
    login_manager.user_loader(load_session_user)

    @login_manager.unauthorized_handler
    def unauthorized():
        if wants_json():
            from flask import jsonify

            return jsonify(error="Please log in", message=gettext("Please log in to continue."), status=401), 401
        from flask import flash

        flash(gettext("Please log in to continue."), "info")
        target = request.full_path if request.method == "GET" else None
        if target and target.endswith("?"):
            target = target[:-1]
        return redirect(url_for("accounts.login", next=target))


def _register_blueprints(app: Flask) -> None:
    from accounts import tasks as _account_tasks  # noqa: F401  (the daily prune of ended logins)
    from accounts.jobs_views import bp as admin_jobs_bp
    from accounts.permissions import can_manage_jobs, can_manage_users, can_read_audit_log
    from accounts.views import admin_bp, audit_bp
    from accounts.views import bp as accounts_bp
    from core import audit  # noqa: F401  (the audit log model)
    from core.views import bp as core_bp
    from courses.framework_views import bp as skills_bp
    from courses.permissions import can_author_courses
    from courses.studio_views import bp as studio_bp
    from courses.views import bp as courses_bp
    from credentials import admin_views as _credential_admin_views  # noqa: F401  (their routes)
    from credentials import document_views as _credential_documents  # noqa: F401
    from credentials import learner_views as _credential_learner_views  # noqa: F401
    from credentials import moments as _credential_moments  # noqa: F401
    from credentials import receivers as _credential_receivers  # noqa: F401  (completion → certificate)
    from credentials import tasks as _credential_tasks  # noqa: F401  (PDF pre-render, status-list jobs)
    from credentials import views as _credential_views  # noqa: F401
    from credentials import wallet_views as _credential_wallet_views  # noqa: F401  (VC-API exchange, CLR)
    from credentials.blueprints import admin_bp as admin_certificates_bp
    from credentials.blueprints import bp as credentials_bp
    from credentials.keys import signing_problem
    from credentials.labels import bulk_status_label, check_label
    from credentials.models import status_label as certificate_status_label
    from credentials.moments import support_email
    from credentials.permissions import can_edit_branding, can_manage_certificates
    from credentials.profile import skills_profile
    from credentials.services import certificate_id_for
    from insights import events  # noqa: F401  (learning events → xAPI statements)
    from insights import tasks as _insight_tasks  # noqa: F401  (xAPI forwarding job)
    from insights.permissions import can_view_insights, can_view_learner_records
    from insights.views import bp as insights_bp
    from insights.workforce_views import bp as reports_bp
    from notifications import receivers as _notification_receivers  # noqa: F401  (events → emails)
    from notifications import tasks as _notification_tasks  # noqa: F401  (the daily scan)
    from notifications.views import bp as notifications_bp
    from obapi import tasks as _obapi_tasks  # noqa: F401  (the daily prune of ended codes and tokens)
    from obapi.services import connected_apps
    from obapi.views import bp as obapi_bp
    from orgs.permissions import can_manage_orgs
    from orgs.views import bp as orgs_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(skills_bp)
    app.register_blueprint(courses_bp)
    app.register_blueprint(studio_bp)
    app.register_blueprint(insights_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(credentials_bp)
    app.register_blueprint(admin_certificates_bp)
    app.register_blueprint(orgs_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(admin_jobs_bp)
    app.register_blueprint(obapi_bp)
    # the views' permission predicates, so that a template shows a link exactly when its page would answer
    app.jinja_env.globals.update(
        can_manage_users=can_manage_users,
        can_read_audit_log=can_read_audit_log,
        can_manage_jobs=can_manage_jobs,
        can_author_courses=can_author_courses,
        can_manage_certificates=can_manage_certificates,
        can_edit_branding=can_edit_branding,
        can_view_insights=can_view_insights,
        can_view_learner_records=can_view_learner_records,
        can_manage_orgs=can_manage_orgs,
    )
    app.jinja_env.globals.update(
        signing_problem=signing_problem,
        certificate_id_for=certificate_id_for,
        skills_profile_of=lambda user: skills_profile(user, now=utcnow()),
        issuer_name=lambda: app.config["ISSUER_NAME"],
        support_email=support_email,
        certificate_status_label=certificate_status_label,
        bulk_status_label=bulk_status_label,
        verification_check_label=check_label,
        connected_apps_of=lambda user: connected_apps(user, now=utcnow()),
    )


def _register_commands(app: Flask) -> None:
    """`flask users|skills|courses|credentials|insights …`: each room's CLI group, added here so no views
    module has to import its cli module."""
    from accounts.cli import cli as users_cli
    from courses.cli import cli as courses_cli
    from credentials.cli import cli as credentials_cli
    from insights.cli import cli as insights_cli
    from skills.cli import cli as skills_cli

    for group in (users_cli, skills_cli, courses_cli, credentials_cli, insights_cli):
        app.cli.add_command(group)
