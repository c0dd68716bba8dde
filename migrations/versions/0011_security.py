"""security: per-login sessions, quiz choice tokens, cooldown after failed attempts

Revision ID: 0011_security
Revises: 0015_reports
Create Date: 2026-12-06 22:45:00

"""
from alembic import op
import sqlalchemy as sa
import core.database


# revision identifiers, used by Alembic.
revision = '0011_security'
down_revision = '0015_reports'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('login_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', core.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_login_sessions_token_hash'))
    )
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_sessions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('quiz_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tokens', sa.JSON(), nullable=True))

    with op.batch_alter_table('quizzes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure_cooldown_minutes', sa.Integer(), server_default='30', nullable=False))
        batch_op.create_check_constraint(
            batch_op.f('ck_quizzes_failure_cooldown_positive'), 'failure_cooldown_minutes >= 0'
        )


def downgrade():
    with op.batch_alter_table('quizzes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_quizzes_failure_cooldown_positive'), type_='check')
        batch_op.drop_column('failure_cooldown_minutes')

    with op.batch_alter_table('quiz_attempts', schema=None) as batch_op:
        batch_op.drop_column('tokens')

    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_sessions_user_id'))

    op.drop_table('login_sessions')
