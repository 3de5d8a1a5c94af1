"""Several stored mails per claim and per commit (qopi_bot.batching), seen from outside.

A mail's reads (its thread, the sender's reply count, the conversation's state) are one read,
and the writes of several mails are one commit: a mail that continues a conversation an
earlier mail of the same batch wrote must still see that turn, and a worker killed while a
backlog is being worked through in batches loses no mail and answers none twice."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import make_msgid
from pathlib import Path

from qopi_bot.models import ConversationState
from qopi_bot.schema import conversations
from tests.email_support import (
    HELP, WorkerProcess, env_for, inbox_rows, question_mail, running_worker, send, settings_for, settle,
)
from tests.fakes.smtp_sink import SmtpSink, send_eml, smtp_sink  # noqa: F401  (fixture)

DANA = "dana.whitfield@riverbend-onc.example.org"
COLLEAGUE = "lee.moreno@riverbend-onc.example.org"


async def test_two_replies_in_one_batch_both_continue_the_conversation(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    """Two follow-ups to the bot's reply, stored together so that one claim takes both: the
    second is worked out on the conversation the first one left (three turns, in order)."""
    async with running_worker(settings_for(tmp_path / "db.sqlite3", smtp_sink)) as worker:
        first = question_mail("Our OQS was 81% in Fall 2025 on the certification pathway.")
        await send(worker, first.as_bytes(), DANA)
        await settle(worker.store)
        reply_id = smtp_sink.messages_to(DANA)[-1].message["Message-ID"]
        # Dana and a colleague she copied both answer the bot's reply.
        follow = [question_mail(text, subject="Re: Score validity", sender=sender, in_reply_to=reply_id,
                                references=[first["Message-ID"], reply_id])
                  for text, sender in (("Is that enough to apply?", DANA),
                                       ("And how long is that score valid?", COLLEAGUE))]
        # Stored in one transaction, as the SMTP intake's group commit does in a burst.
        await worker.store.inbox_put_many("email", [
            (m["Message-ID"], m.as_bytes(), {"mail_from": sender, "rcpt_tos": [HELP], "size": len(m.as_bytes())})
            for m, sender in zip(follow, (DANA, COLLEAGUE))])
        worker._inbox_wake.set()
        await settle(worker.store)
        key = f"email:{first['Message-ID']}"
        async with worker.store.engine.connect() as conn:
            rows = (await conn.execute(conversations.select())).mappings().all()
        transcript = await worker.store.transcript(key)
    assert [r["key"] for r in rows] == [key]  # both follow-ups joined the first mail's conversation
    assert ConversationState.model_validate(rows[0]["state"]).turns == 3
    practice = [text for role, _author, text in transcript if role == "practice"]
    assert [p.strip() for p in practice] == ["Our OQS was 81% in Fall 2025 on the certification pathway.",
                                             "Is that enough to apply?", "And how long is that score valid?"]
    assert len(smtp_sink.messages_to(DANA)) == 2 and len(smtp_sink.messages_to(COLLEAGUE)) == 1


def test_worker_killed_mid_backlog_answers_every_mail_exactly_once(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    """24 mails from 8 senders at once; the worker is killed with SIGKILL while it works
    through them in batches, and started again. Senders whose 250 never came send again (as
    an MTA does). Every mail is stored once and answered with exactly one reply."""
    env = env_for(tmp_path / "db.sqlite3", smtp_sink, QOPI_LEASE_SECONDS="1")
    mails = [question_mail(f"Question {n}: is 7{n % 10}% enough to pass?", subject=f"Question {n}",
                           sender=f"quality{n}@practice{n % 5}.example.org",
                           message_id=make_msgid(idstring=f"batch{n}", domain="practice.example.org"))
             for n in range(24)]
    unsent: list[int] = []
    lock = threading.Lock()

    def deliver(n: int, port: int) -> None:
        try:
            send_eml("127.0.0.1", port, mails[n].as_bytes(), mails[n]["From"].addresses[0].addr_spec, HELP, 10.0)
        except Exception:  # the worker died mid-conversation: no 250, so the sender keeps the mail
            with lock:
                unsent.append(n)

    worker = WorkerProcess(env, tmp_path / "worker1.log")
    try:
        worker.wait_listening()
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(deliver, n, worker.port) for n in range(24)]
            deadline = time.monotonic() + 30
            while len(smtp_sink) < 3:  # some answered, the rest still in the inbox or on the way
                assert time.monotonic() < deadline, "no reply went out"
                time.sleep(0.005)
            worker.kill()
            for f in futures:
                f.result()
    finally:
        worker.kill()

    worker = WorkerProcess(env, tmp_path / "worker2.log")
    try:
        worker.wait_listening()
        for n in sorted(unsent):
            deliver(n, worker.port)
        deadline = time.monotonic() + 60
        while len({m.message["In-Reply-To"] for m in smtp_sink.messages}) < 24:
            assert time.monotonic() < deadline, "not every mail was answered"
            time.sleep(0.05)
        smtp_sink.assert_quiet(2.5)  # longer than the lease and the backoff: nothing more comes
    finally:
        assert worker.terminate() == 0
    replies: dict[str, set[str]] = {}
    for m in smtp_sink.messages:
        replies.setdefault(m.message["In-Reply-To"], set()).add(m.message["Message-ID"])
    assert sorted(replies) == sorted(m["Message-ID"] for m in mails)
    # One answer per mail. A reply the relay had taken just before the kill, whose "sent" mark
    # was not committed yet, goes out again -- as the same message (docs/production.md).
    assert all(len(ids) == 1 for ids in replies.values()), replies

    import asyncio

    from qopi_bot.store import Store

    async def rows() -> list[dict[str, object]]:
        store = Store.from_url(env["DATABASE_URL"])
        try:
            return await inbox_rows(store)
        finally:
            await store.close()

    stored = asyncio.run(rows())
    assert sorted(r["external_id"] for r in stored) == sorted(m["Message-ID"] for m in mails)
    assert {r["status"] for r in stored} == {"done"}
