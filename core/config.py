"""Configuration: defaults, then instance/config.py, then FLASK_* environment, then the test mapping."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

DEFAULTS: dict[str, Any] = {
    "APP_ENV": "production",  # development | test | production
    "SECRET_KEY": None,
    "SQLALCHEMY_DATABASE_URI": None,
    # a database that does not answer fails the request within seconds (friendly 503) instead of hanging a worker
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_timeout": 10, "connect_args": {"connect_timeout": 5}},
    # a pooled connection idle this many seconds is pinged before use, so connections that died while the database
    # restarted are replaced (core.database.ping_when_idle: pool_pre_ping without a round trip on every request);
    # None: no ping
    "DATABASE_PING_AFTER_IDLE": 1.0,
    "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": None,  # None: secure in production, plain HTTP allowed in dev/test
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_SECURE": None,
    "REMEMBER_COOKIE_DURATION": 14 * 24 * 3600,
    "PERMANENT_SESSION_LIFETIME": 14 * 24 * 3600,
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,
    "RATELIMIT_STORAGE_URI": "memory://",
    "TRUSTED_PROXIES": 0,  # reverse proxies in front (X-Forwarded-For/Proto/Host hops to trust)
    "TRUSTED_HOSTS": None,  # e.g. ["academy.example.org"]: other Host headers get a 400
    # production refuses to start without TRUSTED_HOSTS, or with the outbox mail backend (password-reset links
    # in files on disk), unless these say it is meant (a staging box, a test harness)
    "ALLOW_ANY_HOST": False,
    "ALLOW_OUTBOX_MAIL": False,
    "RATELIMIT_HEADERS_ENABLED": True,
    "RATELIMIT_LOGIN": "10 per minute; 50 per hour",
    "RATELIMIT_REGISTER": "10 per hour",
    "RATELIMIT_RESET": "5 per 15 minutes",
    "PASSWORD_RESET_MAX_AGE": 3600,
    # every reset request answers after at least this long, known account or not (a token is written only for
    # real accounts, which made them 34 ms against 10 ms)
    "PASSWORD_RESET_MIN_SECONDS": 0.25,
    "RATELIMIT_VERIFY": "60 per minute",
    # tests only: the verifier may fetch other issuers' DID documents and status lists over plain http from
    # loopback (credentials/fetcher.py); any other APP_ENV refuses to start with it
    "DID_FETCH_ALLOW_LOOPBACK": False,
    "RATELIMIT_STATUS_LIST": "120 per minute",  # per client; verifiers cache the list for its ttl (5 minutes)
    "VERIFY_COUNT_BATCH": 50,  # verification counts are written every 50 verifications or 5 seconds
    "VERIFY_COUNT_SECONDS": 5.0,
    # verification answers kept per app process (JSON facts, and pages for anonymous visitors), keyed by the
    # certificate's row: 0 turns the cache off (credentials/answers.py)
    "VERIFY_CACHE_SIZE": 2000,
    "CERTIFICATE_DIR": None,  # default: instance/certificates
    "XAPI_LRS_ENDPOINT": None,  # e.g. https://lrs.example.org/xapi (statements are PUT there by id)
    "XAPI_LRS_USERNAME": None,
    "XAPI_LRS_PASSWORD": None,
    "UPLOAD_DIR": None,  # lesson images; default: instance/uploads
    # where PDFs, previews and lesson images go (core/storage.py): local (the two folders above) or s3 (one
    # bucket every app server and worker shares; more than one machine needs it)
    "STORAGE_BACKEND": "local",
    "STORAGE_S3_BUCKET": None,
    "STORAGE_S3_PREFIX": "",  # e.g. "academy/": objects are <prefix>certificates/... and <prefix>uploads/...
    "STORAGE_S3_ENDPOINT_URL": None,  # MinIO, Ceph, R2, ...; None: AWS S3
    "STORAGE_S3_REGION": None,
    "STORAGE_S3_ACCESS_KEY_ID": None,  # None: boto3's own chain (AWS_* variables, shared files, instance role)
    "STORAGE_S3_SECRET_ACCESS_KEY": None,
    "STORAGE_S3_ADDRESSING_STYLE": "auto",  # path for most self-hosted servers
    "MAX_IMAGE_BYTES": 1024 * 1024,
    "CERTIFICATE_PAPER": "A4",  # A4 or Letter (landscape)
    "ISSUER_NAME": "AI Workforce Academy",
    "ISSUER_URL": "http://127.0.0.1:5000",  # the public base URL: did:web, credential and verify links
    "ISSUER_EMAIL": None,
    # whom workers, employers and admins write to (help page, revoked/expired certificates); falls back to
    # ISSUER_EMAIL, then to the address of MAIL_DEFAULT_SENDER
    "SUPPORT_EMAIL": None,
    "SIGNING_KEY_FILE": None,  # default: instance/signing-keys.json
    "SIGNING_KEYS": None,  # or the key store JSON itself (e.g. FLASK_SIGNING_KEYS from a secret manager)
    "MAIL_BACKEND": "outbox",  # outbox | smtp
    "MAIL_OUTBOX_DIR": None,
    "MAIL_DEFAULT_SENDER": "AI Workforce Academy <no-reply@academy.local>",
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": 587,
    "MAIL_USE_TLS": True,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_TIMEOUT": 15,  # seconds per SMTP step; a stalled server makes the job retry
    # the task queue: immediate (tests: jobs run in the web process), sqlite:///PATH (default: instance/queue.db)
    # or redis://HOST:PORT/DB (production, shared by every worker)
    "QUEUE_URL": None,
    "QUEUE_NAME": "academy",
    "QUEUE_RETRY_BASE_SECONDS": 30,  # retries after 30 s, 2 min, 8 min, 32 min, ...
    "QUEUE_DAILY_HOUR": 13,  # UTC hour from which the daily jobs (expiry scan, nudges) run
    "PRERENDER_PDF": True,  # render a certificate's PDF in the worker right after issuance
    "INACTIVITY_DAYS": 14,  # a learner who opted in is nudged after this many days without progress
    "RATELIMIT_UNSUBSCRIBE": "30 per minute",
    "RATELIMIT_VERIFY_EMAIL": "10 per 15 minutes",
    # the Open Badges API (obapi/): open client registration, the token and revocation endpoints, and the API reads
    "RATELIMIT_OB_REGISTER": "10 per hour",
    "RATELIMIT_OB_TOKEN": "60 per minute",
    "RATELIMIT_OB_API": "120 per minute",
    "OB_API_PRIVACY_URL": None,  # the discovery document's privacy policy; default: our page about connected apps
    "OB_API_TERMS_URL": None,  # termsOfService in the discovery document, when there is one
    # what changes only on publish (course outlines, catalog results, framework pages, visitors' pages), cached
    # in each process and keyed by the content version in the database (core/contentcache.py); entries per process
    "CONTENT_CACHE": True,
    "CONTENT_CACHE_SIZE": 2000,
    "CONTENT_CACHE_PAGE_BYTES": 32 * 1024 * 1024,  # whole visitors' pages, per process
    # learners' kept course and lesson pages answered before Flask (courses/lane.py); off: Flask answers them all
    "SIGNED_IN_LANE": True,
}

WEAK_SECRETS = {"", "dev", "secret", "changeme", "change-me", "please-change"}


class ConfigError(RuntimeError):
    """The app refuses to start with this configuration."""


def _flag(value: Any) -> bool:
    """A yes/no setting from the environment ("true", "1", "yes") or a Python value."""
    return value is True or (isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"})


def load_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("FLASK")
    if os.environ.get("DATABASE_URL") and not os.environ.get("FLASK_SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    if overrides:
        app.config.from_mapping(overrides)

    env = app.config["APP_ENV"]
    if env not in {"development", "test", "production"}:
        raise ConfigError(f"APP_ENV must be development, test or production, not {env!r}")
    for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        if app.config[key] is None:
            # plain-HTTP loopback in development: secure-only cookies would never come back
            app.config[key] = env == "production"
    if env in {"development", "test"} and not app.config["SQLALCHEMY_DATABASE_URI"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(app.instance_path, "academy.db")
    if not app.config["QUEUE_URL"]:
        app.config["QUEUE_URL"] = (
            "immediate" if env == "test" else "sqlite:///" + os.path.join(app.instance_path, "queue.db")
        )
    if app.config["CERTIFICATE_PAPER"] not in {"A4", "Letter"}:
        raise ConfigError("CERTIFICATE_PAPER must be A4 or Letter")
    secret = app.config.get("SECRET_KEY") or ""
    if env != "test" and (secret in WEAK_SECRETS or len(secret) < 32):
        raise ConfigError(
            "SECRET_KEY is missing or weak: set FLASK_SECRET_KEY to 32+ random characters "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if env != "test" and _flag(app.config["DID_FETCH_ALLOW_LOOPBACK"]):
        raise ConfigError(
            "DID_FETCH_ALLOW_LOOPBACK is for tests only: it would let anyone make the verifier fetch from this "
            "machine's loopback addresses. Remove it."
        )
    if env == "test" and not secret:
        raise ConfigError("tests must pass a SECRET_KEY in the config mapping")
    if env == "production" and app.config["MAIL_BACKEND"] == "outbox" and not _flag(app.config["ALLOW_OUTBOX_MAIL"]):
        raise ConfigError(
            "MAIL_BACKEND is outbox: production would write password-reset links to files on disk. Set "
            "FLASK_MAIL_BACKEND=smtp (and FLASK_MAIL_SERVER), or FLASK_ALLOW_OUTBOX_MAIL=true if that is meant."
        )
    if env == "production" and not app.config["TRUSTED_HOSTS"] and not _flag(app.config["ALLOW_ANY_HOST"]):
        raise ConfigError(
            "TRUSTED_HOSTS is not set: set FLASK_TRUSTED_HOSTS to the host names the site answers to, e.g. "
            "'[\"academy.example.org\"]', or FLASK_ALLOW_ANY_HOST=true if a proxy in front checks the Host header."
        )
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        raise ConfigError("set FLASK_SQLALCHEMY_DATABASE_URI (or DATABASE_URL) to the database URL")
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgres://"):
        uri = "postgresql://" + uri[len("postgres://") :]
    if uri.startswith("postgresql://"):
        uri = "postgresql+psycopg://" + uri[len("postgresql://") :]
    app.config["SQLALCHEMY_DATABASE_URI"] = uri
    if uri.startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {}
