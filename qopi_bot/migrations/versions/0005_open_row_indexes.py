"""partial indexes of the open inbox and outbox rows (what a claim reads)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 08:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_OPEN = sa.text("status IN ('pending', 'leased')")


def upgrade() -> None:
    op.create_index('ix_inbox_open', 'inbox', ['source', 'id'], unique=False, sqlite_where=_OPEN, postgresql_where=_OPEN)
    op.create_index('ix_outbox_open', 'outbox', ['channel', 'next_attempt_at'], unique=False, sqlite_where=_OPEN,
                    postgresql_where=_OPEN)


def downgrade() -> None:
    op.drop_index('ix_outbox_open', table_name='outbox')
    op.drop_index('ix_inbox_open', table_name='inbox')
