"""certificate branding: seal, signatory, address line

Revision ID: 0016_branding
Revises: 0013_programs
Create Date: 2026-12-06 22:30:00

"""
from alembic import op
import sqlalchemy as sa
import core.database


# revision identifiers, used by Alembic.
revision = '0016_branding'
down_revision = '0013_programs'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('branding',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('issuer_address', sa.String(length=300), nullable=False),
    sa.Column('signatory_name', sa.String(length=120), nullable=False),
    sa.Column('signatory_title', sa.String(length=120), nullable=False),
    sa.Column('seal_png', sa.LargeBinary(), nullable=True),
    sa.Column('seal_alt', sa.String(length=300), nullable=False),
    sa.Column('signature_png', sa.LargeBinary(), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('updated_at', core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('id = 1', name=op.f('ck_branding_single_row')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_branding_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_branding'))
    )


def downgrade():
    op.drop_table('branding')
