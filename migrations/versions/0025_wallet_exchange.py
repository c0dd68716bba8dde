"""wallet_exchanges: single-use, expiring "Add to wallet" challenges (VC-API exchange, issue 18)

Revision ID: 0025_wallet_exchange
Revises: 0023_insights_rollup
Create Date: 2026-12-07 04:10:00

"""

import sqlalchemy as sa
from alembic import op

import core.database

revision = "0025_wallet_exchange"
down_revision = "0023_insights_rollup"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "wallet_exchanges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=43), nullable=False),
        sa.Column("challenge", sa.String(length=43), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", core.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", core.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("holder_did", sa.String(length=512), nullable=True),
        sa.Column("suite", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_wallet_exchanges_certificate_id_certificates"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_wallet_exchanges_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_exchanges")),
        sa.UniqueConstraint("challenge", name=op.f("uq_wallet_exchanges_challenge")),
        sa.UniqueConstraint("public_id", name=op.f("uq_wallet_exchanges_public_id")),
    )
    with op.batch_alter_table("wallet_exchanges") as batch_op:
        batch_op.create_index(batch_op.f("ix_wallet_exchanges_certificate_id"), ["certificate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_wallet_exchanges_user_id"), ["user_id"], unique=False)


def downgrade():
    op.drop_table("wallet_exchanges")
