"""Baselines served under the same gunicorn settings as the app.

/       a bare Flask endpoint (no database)
/pk/<id> a bare Flask endpoint doing one primary-key-style lookup of a certificate by public ID through a
        pooled SQLAlchemy engine (same pool settings as the app): the floor for a verification
"""

import os

from flask import Flask, abort, jsonify
from sqlalchemy import create_engine, text

app = Flask(__name__)
_engine = None


def engine():
    global _engine
    if _engine is None:
        url = os.environ["FLASK_SQLALCHEMY_DATABASE_URI"].replace("postgresql://", "postgresql+psycopg://", 1)
        _engine = create_engine(url, pool_pre_ping=True)
    return _engine


@app.get("/")
def index():
    return "ok"


@app.get("/pk/<public_id>")
def pk(public_id):
    with engine().connect() as conn:
        row = conn.execute(
            text("SELECT holder_name, course_title, revoked_at, expires_at FROM certificates WHERE public_id = :id"),
            {"id": public_id.replace("-", "")},
        ).first()
    if row is None:
        abort(404)
    return jsonify(holder_name=row.holder_name, course=row.course_title)
