"""The email worker on PostgreSQL (the multi-process deployment): NUL bytes and odd charsets
store fine. (An unmigrated database: tests/test_unmigrated_database.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest

from qopi_bot.migrate import upgrade
from qopi_bot_handlers.email.worker import MAX_BACKLOG
from qopi_bot.store import Store
from tests.email_support import (CORPUS, HELP, inbox_rows, manifest, norm, practice_messages, question_mail, running_worker, send,
                                 settings_for, settle)
from tests.fakes.pg_fixture import postgres_server, postgres_url  # noqa: F401  (fixtures)
from tests.fakes.smtp_sink import SmtpSink, smtp_sink  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres
FILES = ["44_malformed_nul_byte.eml", "13_windows1252_base64.eml", "18_attachment_patient_chart.eml",
         "20_subset_downtown_site.eml", "34_bounce_dsn_multipart_report.eml"]


async def test_worker_on_postgres(tmp_path: Path, smtp_sink: SmtpSink, postgres_url: str) -> None:  # noqa: F811
    store = Store.from_url(postgres_url)
    await upgrade(store)
    await store.close()
    entries = {e["file"]: e for e in manifest()}
    settings = settings_for(tmp_path / "unused.sqlite3", smtp_sink, DATABASE_URL=postgres_url)
    async with running_worker(settings) as worker:
        for name in FILES:
            await send(worker, (CORPUS / name).read_bytes(), entries[name]["envelope_from"])
        await settle(worker.store, timeout=20)
        texts = [norm(t) for _, _, t in await practice_messages(worker.store)]
        for name in FILES[:4]:
            assert any(norm(entries[name]["question_contains"]) in t for t in texts), name
        # 4 answers + 1 staff case mail; the bounce is not answered.
        assert len(smtp_sink.messages) == 5


async def test_two_workers_share_a_burst_without_holding_acks(tmp_path: Path, smtp_sink: SmtpSink,
                                                                postgres_url: str) -> None:  # noqa: F811
    """Flow control with several workers on one database: a burst sent to one worker is
    processed by both, and the one that stored it must not go on counting what the other
    answered as still waiting (its 250s would each be held the whole backlog wait)."""
    store = Store.from_url(postgres_url)
    await upgrade(store)
    await store.close()
    # Enough mail, from more senders at once than a worker may hold, that the 250s are held
    # for a while and the second worker answers more than MAX_BACKLOG of the first's mails:
    # a count that drifted by that much would hold every later 250 the whole 10 s.
    total, senders = 3 * MAX_BACKLOG, MAX_BACKLOG + 8
    mails = [(question_mail(f"Our OQS was {76 + n % 20}% in Fall 2025. Are we eligible?", subject=f"Question {n}",
                            sender=f"quality{n}@practice{n}.example.org").as_bytes(), f"quality{n}@practice{n}.example.org")
             for n in range(total)]
    settings = settings_for(tmp_path / "unused.sqlite3", smtp_sink, DATABASE_URL=postgres_url)
    async with running_worker(settings) as first, running_worker(settings) as second:
        queue = list(mails)
        host, port = first.address

        async def sender() -> None:
            while queue:  # bounded: a finite list
                raw, mail_from = queue.pop()
                # All to the first worker (both process), one SMTP session per mail, many at once.
                await aiosmtplib.send(raw, sender=mail_from, recipients=[HELP], hostname=host, port=port,
                                      start_tls=False, timeout=60)

        await asyncio.gather(*(sender() for _ in range(senders)))
        await settle(first.store, timeout=30)
        await smtp_sink.wait_for_async(len(mails), timeout=30)
        assert first.late_acks == 0 and second.late_acks == 0
        rows = await inbox_rows(first.store)
        second_owner = second.store.owner
    assert len(smtp_sink.messages) == len(mails)  # one reply per mail
    assert {r["status"] for r in rows} == {"done"} and len(rows) == len(mails)
    # The second worker really did part of the work (else this would prove nothing about sharing).
    assert any(r["lease_owner"] == second_owner for r in rows)
