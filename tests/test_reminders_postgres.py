"""Exactly once on PostgreSQL: two `qopi-bot reminders run` processes at the same time hand
each due reminder to the outbox once (FOR UPDATE SKIP LOCKED), and a database outage during a
run loses nothing and sends nothing twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import subprocess

import pytest
from sqlalchemy import func, select

from qopi_bot.reminder_store import ReminderStore
from qopi_bot.reminders import Planned, Subject
from qopi_bot.models import RoundRef
from qopi_bot.schema import outbox
from qopi_bot.store import Store
from tests.conftest import QOPI_BOT, ROUNDS_FIXTURE
from tests.fakes.postgres import ThrowawayPostgres

DAY = dt.date(2026, 11, 11)


def env_for(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QOPI_", "SLACK_", "DATABASE_URL"))}
    return env | {"DATABASE_URL": url, "QOPI_ROUNDS_FILE": str(ROUNDS_FIXTURE)}


def sent_count(stdout: str) -> int:
    m = re.search(r"^sent (\d+) reminder", stdout, re.M)
    assert m, stdout
    return int(m.group(1))


async def seed(url: str, count: int, due: dt.date, prefix: str) -> None:
    store = Store.from_url(url)
    try:
        reminders = ReminderStore(store)
        subject = Subject(score=81.0, completed_round=RoundRef(season="fall", year=2025))
        for n in range(count):
            await reminders.replace(f"slack:C{prefix}{n}:1.{n}", "slack", {"channel": f"C{prefix}{n}", "thread_ts": f"1.{n}"},
                                    subject, [Planned(kind="before_close", days_before=30, due=due)])
    finally:
        await store.close()


async def queued(url: str) -> tuple[int, int, list[str]]:
    store = Store.from_url(url)
    try:
        async with store.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(outbox).where(outbox.c.kind == "reminder"))).scalar_one()
            distinct = (await conn.execute(select(func.count(func.distinct(outbox.c.dedupe_key)))
                                           .where(outbox.c.kind == "reminder"))).scalar_one()
        statuses = [r.status for r in await ReminderStore(store).list()]
    finally:
        await store.close()
    return int(total), int(distinct), statuses


@pytest.mark.postgres
def test_two_processes_send_each_reminder_once_and_an_outage_loses_nothing(
        postgres_url: str, postgres_server: ThrowawayPostgres) -> None:
    env = env_for(postgres_url)
    assert subprocess.run([QOPI_BOT, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60).returncode == 0
    asyncio.run(seed(postgres_url, 150, DAY, "a"))

    runs = [subprocess.Popen([QOPI_BOT, "reminders", "run", "--today", DAY.isoformat()], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in runs]
    assert all(p.returncode == 0 for p in runs), outputs
    assert sum(sent_count(out) for out, _ in outputs) == 150
    total, distinct, statuses = asyncio.run(queued(postgres_url))
    assert total == distinct == 150 and statuses == ["sent"] * 150

    # Ten more come due later; the database goes away for the first attempt.
    later = DAY + dt.timedelta(days=23)
    asyncio.run(seed(postgres_url, 10, later, "b"))
    postgres_server.stop()
    try:
        down = subprocess.run([QOPI_BOT, "reminders", "run", "--today", later.isoformat()], env=env,
                              capture_output=True, text=True, timeout=120)
    finally:
        postgres_server.start()
    assert down.returncode == 1 and "cannot reach the database" in down.stderr and "Traceback" not in down.stderr
    back = subprocess.run([QOPI_BOT, "reminders", "run", "--today", later.isoformat()], env=env,
                          capture_output=True, text=True, timeout=120)
    assert sent_count(back.stdout) == 10, back.stderr
    again = subprocess.run([QOPI_BOT, "reminders", "run", "--today", later.isoformat()], env=env,
                           capture_output=True, text=True, timeout=120)
    assert sent_count(again.stdout) == 0
    total, distinct, statuses = asyncio.run(queued(postgres_url))
    assert total == distinct == 160 and statuses == ["sent"] * 160
