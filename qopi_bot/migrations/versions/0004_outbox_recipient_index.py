"""index the outbox by recipient, kind and time (the per-mail reply-cap count)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 01:30:00
"""
from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_recipient_kind_created', ['recipient', 'kind', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_recipient_kind_created')
