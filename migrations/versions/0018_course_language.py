"""courses.language: the BCP 47 code of the language a course is written in (English for existing courses)

Revision ID: 0018_course_language
Revises: 0019_user_locale
Create Date: 2026-12-07 01:15:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0018_course_language"
down_revision = "0019_user_locale"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("courses") as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), server_default="en", nullable=False))


def downgrade():
    with op.batch_alter_table("courses") as batch_op:
        batch_op.drop_column("language")
