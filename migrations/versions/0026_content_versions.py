"""content_versions: the token that keys the content cache (core/contentcache.py)

Revision ID: 0026_content_versions
Revises: 0025_wallet_exchange
Create Date: 2026-12-07 04:30:00

"""

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0026_content_versions"
down_revision = "0025_wallet_exchange"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "content_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_versions")),
    )
    # the row exists from the start, so no two writers ever race to insert it
    op.bulk_insert(table, [{"id": 1, "token": secrets.token_hex(16), "changed_at": datetime.now(UTC)}])


def downgrade():
    op.drop_table("content_versions")
