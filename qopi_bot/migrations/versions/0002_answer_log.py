"""answer log and staff console sign-in tokens

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'answer_log',
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('conversation_key', sa.String(length=300), nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('intent', sa.String(length=30), nullable=True),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('verdict', sa.String(length=40), nullable=True),
        sa.Column('rules', sa.JSON(), nullable=False),
        sa.Column('facts', sa.JSON(), nullable=False),
        sa.Column('case_id', sa.String(length=20), nullable=True),
        sa.Column('knowledge_version', sa.String(length=40), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=True),
        sa.Column('understood', sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('answer_log', schema=None) as batch_op:
        batch_op.create_index('ix_answer_log_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_answer_log_conversation_key', ['conversation_key'], unique=False)

    op.create_table(
        'console_tokens',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('user_id', sa.String(length=100), nullable=False),
        sa.Column('csrf', sa.String(length=64), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('token_hash'),
    )


def downgrade() -> None:
    op.drop_table('console_tokens')
    with op.batch_alter_table('answer_log', schema=None) as batch_op:
        batch_op.drop_index('ix_answer_log_conversation_key')
        batch_op.drop_index('ix_answer_log_created_at')
    op.drop_table('answer_log')
