"""`qopi-bot report` and `qopi-bot console link`: the answer log summary and staff sign-in
links from the command line (contract sections 2 and 9)."""

from __future__ import annotations

import datetime as dt
import json

import typer

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from qopi_bot.runtime import prepare_schema
from qopi_bot.settings import Settings
from qopi_bot.store import Store


@asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[Store]:
    """The database only: a report or a sign-in link must work while the knowledge folder is
    being fixed (the processes keep the last good knowledge meanwhile)."""
    store = Store.from_url(settings.db_url)
    try:
        await prepare_schema(store)
        yield store
    finally:
        await store.close()


async def print_report(settings: Settings, since: dt.date | None, as_json: bool) -> None:
    from qopi_bot.report import build_report, render_text

    async with _store(settings) as store:
        report = await build_report(store.engine, since)
    typer.echo(json.dumps(report.model_dump(mode="json"), ensure_ascii=False) if as_json else render_text(report))


async def print_link(settings: Settings, user_id: str) -> None:
    from qopi_bot.console_auth import LINK_MINUTES, issue_link_token, link_url

    if user_id not in settings.staff_user_ids:
        typer.echo(f"qopi-bot: {user_id} is not in QOPI_STAFF_USERS; only staff may sign in to the console.", err=True)
        raise typer.Exit(1)
    async with _store(settings) as store:
        token = await issue_link_token(store.engine, user_id)
    typer.echo(link_url(settings.console_base_url, token))
    typer.echo(f"(valid for {LINK_MINUTES} minutes, once)", err=True)
