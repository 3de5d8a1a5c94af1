"""Operators see and retry failed inbound items (issue 14): `qopi-bot inbox list` and
`qopi-bot inbox retry`, mirroring `outbox list/retry`.

A real failure, not a planted row: mail arrives over SMTP while the database refuses to
store transcripts (a trigger stands in for a bug), the worker tries it 5 times and parks it
as `failed`; once the cause is gone, `inbox retry` (the CLI as a process) queues it again
and the running worker answers it over SMTP, once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from tests.conftest import Cli
from tests.email_support import question_mail, reply_text, running_worker, send, settings_for
from tests.fakes.smtp_sink import SmtpSink, smtp_sink  # noqa: F401  (fixture)

DANA = "dana.whitfield@riverbend-onc.example.org"


async def _wait_status(store, item_id: int, status: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = {r["id"]: r for r in await store.inbox_list()}
        if item_id in rows and rows[item_id]["status"] == status:
            return
        assert asyncio.get_running_loop().time() < deadline, f"item {item_id} never became {status}: {rows}"
        await asyncio.sleep(0.05)


async def test_failed_mail_is_listed_and_retried(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    db = tmp_path / "db.sqlite3"
    cli = Cli(f"sqlite+aiosqlite:///{db}")
    async with running_worker(settings_for(db, smtp_sink, QOPI_LEASE_SECONDS="1")) as worker:
        with sqlite3.connect(db) as conn:  # the "bug": storing a transcript line fails
            conn.execute("CREATE TRIGGER broken BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'broken'); END")
        await send(worker, question_mail("Is a score of 81% in Fall 2025 enough?").as_bytes(), DANA)
        await _wait_status(worker.store, 1, "failed")
        assert smtp_sink.messages_to(DANA) == []

        listed = await asyncio.to_thread(cli.run, "inbox", "list", "--status", "failed", "--json")
        assert listed.returncode == 0, listed.stderr
        [item] = json.loads(listed.stdout)
        assert item["id"] == 1 and item["source"] == "email" and item["attempts"] == 5 and item["last_error"]
        assert "payload" not in item and "81%" not in listed.stdout  # never the message text
        table = await asyncio.to_thread(cli.run, "inbox", "list")
        assert "#1 email failed" in table.stdout

        with sqlite3.connect(db) as conn:  # the fix is deployed
            conn.execute("DROP TRIGGER broken")
        retried = await asyncio.to_thread(cli.run, "inbox", "retry", "1")
        assert retried.returncode == 0 and "#1" in retried.stdout
        [answer] = await smtp_sink.wait_for_async(1, timeout=15)
        assert answer.rcpt_tos == (DANA,) and "75" in reply_text(answer)
        await _wait_status(worker.store, 1, "done")

        again = await asyncio.to_thread(cli.run, "inbox", "retry", "1", "99")
        assert again.returncode == 1 and "left alone: #1, #99" in again.stderr
        await smtp_sink.assert_quiet_async(0.3)
        assert len(smtp_sink.messages_to(DANA)) == 1
