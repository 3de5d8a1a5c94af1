"""Email flow control over real SMTP: under a burst the 250 for a stored mail waits while the
worker has more than MAX_BACKLOG mails on its hands, so the burst queues at the senders; a
held mail is stored all the same, and every mail is answered once when room comes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib

from qopi_bot_handlers.email.worker import MAX_BACKLOG
from tests.email_support import HELP, inbox_rows, question_mail, running_worker, settings_for, settle
from tests.fakes.smtp_sink import SmtpSink, smtp_sink  # noqa: F401  (fixture)
from tests.waiting import wait_until_async

EXTRA = 6  # mails beyond what the worker may hold before its 250s wait
RELAY_DELAY = 6.0  # the relay answers DATA this late: replies stay in flight, so room does not come


async def test_a_burst_beyond_the_backlog_waits_for_its_250_and_loses_nothing(tmp_path: Path,
                                                                               smtp_sink: SmtpSink) -> None:  # noqa: F811
    total = MAX_BACKLOG + EXTRA
    mails = [(f"quality{n}@practice{n}.example.org",
              question_mail(f"Our OQS was {76 + n % 20}% in Fall 2025. Are we eligible?", subject=f"Question {n}",
                            sender=f"quality{n}@practice{n}.example.org").as_bytes()) for n in range(total)]
    smtp_sink.set_data_delay(RELAY_DELAY)
    settings = settings_for(tmp_path / "flow.sqlite3", smtp_sink)
    async with running_worker(settings) as worker:
        host, port = worker.address
        accepted: list[str] = []  # senders whose 250 came

        async def deliver(mail_from: str, raw: bytes) -> None:
            # One SMTP session per mail, all at once, like a burst from many MTAs.
            await aiosmtplib.send(raw, sender=mail_from, recipients=[HELP], hostname=host, port=port,
                                  start_tls=False, timeout=30)
            accepted.append(mail_from)

        senders = [asyncio.create_task(deliver(f, r)) for f, r in mails]

        async def all_stored() -> bool:
            return len(await inbox_rows(worker.store)) == total

        # Every mail is stored before its 250 is decided, held or not.
        await wait_until_async(all_stored, timeout=RELAY_DELAY - 2, what="every mail of the burst stored")
        await asyncio.sleep(0.3)  # time for any 250 that is not held to reach its sender
        # The relay has answered nothing yet, so no room was made: exactly MAX_BACKLOG 250s
        # went out and the other senders are still waiting.
        assert smtp_sink.messages == []
        assert len(accepted) == MAX_BACKLOG, f"{len(accepted)} 250s given while the relay held every reply"
        smtp_sink.set_data_delay(0)  # replies sent from now on go through at once
        await asyncio.wait_for(asyncio.gather(*senders), timeout=30)
        await settle(worker.store, timeout=30)
        await smtp_sink.wait_for_async(total, timeout=30)
        assert worker.late_acks == 0  # held for a while, never the whole backlog wait
        rows = await inbox_rows(worker.store)
    # Held, then released: one stored row and one reply per mail, none twice.
    assert len(rows) == total and {r["status"] for r in rows} == {"done"}
    replied_to = sorted(m.rcpt_tos[0] for m in smtp_sink.messages)
    assert replied_to == sorted(f for f, _ in mails)
