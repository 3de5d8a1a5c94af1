"""Alembic environment. Migrations run on a connection the caller passes in
(config.attributes["connection"]); qopi-bot never reads an alembic.ini."""

from __future__ import annotations

from alembic import context

from qopi_bot.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `qopi-bot db upgrade` (qopi_bot.migrate), not the alembic CLI")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite",
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
