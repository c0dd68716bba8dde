"""users.locale: the language a person reads the site and its emails in

Revision ID: 0019_user_locale
Revises: 0011_security
Create Date: 2026-12-07 01:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0019_user_locale"
down_revision = "0011_security"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("locale")
