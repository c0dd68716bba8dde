"""Site-wide pages that belong to no domain: the home page and a health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from sqlalchemy import text

from core.extensions import db

bp = Blueprint("core", __name__)


@bp.get("/")
def index():
    return render_template("core/index.html")


@bp.get("/healthz")
def health():
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")


@bp.get("/help")
def help():
    """Answers for workers, employers and admins, and whom to write to (SUPPORT_EMAIL)."""
    return render_template("core/help.html")
