"""The schema comes from migrations, and the migrations agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from core.extensions import db


def _diff():
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        return compare_metadata(context, db.metadata)


def test_models_and_migrations_agree(ctx):
    assert _diff() == []


def test_downgrade_to_base_and_upgrade_round_trip(ctx):
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    assert {"users", "password_reset_tokens"} <= set(inspect(db.engine).get_table_names())
    assert _diff() == []
