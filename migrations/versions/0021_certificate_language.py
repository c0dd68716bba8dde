"""certificates.language: the language of the course a certificate was earned in (English for existing ones)

Revision ID: 0021_certificate_language
Revises: 0020_report_indexes
Create Date: 2026-12-07 01:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0021_certificate_language"
down_revision = "0020_report_indexes"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), server_default="en", nullable=False))


def downgrade():
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.drop_column("language")
