"""Schema management. SQLite (the embedded default) is brought up to date automatically;
a server database must be migrated on purpose with `qopi-bot db upgrade`."""

from __future__ import annotations

from qopi_bot.store import Store


class SchemaNotReady(Exception):
    """The database has not been migrated; the message says which command fixes it."""


async def upgrade(store: Store) -> str:
    await store.create_schema()
    return "schema is up to date"


async def ensure_schema(store: Store) -> None:
    await store.create_schema()
