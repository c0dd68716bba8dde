"""lessons.review_by: the day a lesson's time-sensitive facts are due for checking

Revision ID: 0017_review_by
Revises: 0010
Create Date: 2026-12-06 22:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0017_review_by"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("lessons") as batch_op:
        batch_op.add_column(sa.Column("review_by", sa.Date(), nullable=True))


def downgrade():
    with op.batch_alter_table("lessons") as batch_op:
        batch_op.drop_column("review_by")
