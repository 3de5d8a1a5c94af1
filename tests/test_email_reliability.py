"""The email worker never loses or doubles an answer: relay outages, an unreachable
database, oversized mail, and a worker killed with SIGKILL between 250 and the reply."""

from __future__ import annotations

import asyncio
import smtplib
import time
from pathlib import Path

import pytest

from tests.email_support import (
    CORPUS, inbox_rows, manifest, question_mail, running_worker, send, settings_for, settle, WorkerProcess, env_for,
)
from tests.fakes.smtp_sink import SmtpSink, send_eml, smtp_sink  # noqa: F401  (fixture)

DANA = "dana.whitfield@riverbend-onc.example.org"


async def _wait_outbox_attempted(worker, minimum: int = 1, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = await worker.store.outbox_list(channel="email")
        if items and all(i.attempts >= minimum and i.last_error for i in items):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("the reply was never attempted")


@pytest.mark.parametrize("outage", ["stopped", "451"])
async def test_relay_down_then_back_sends_exactly_once(tmp_path: Path, smtp_sink: SmtpSink, outage: str) -> None:
    async with running_worker(settings_for(tmp_path / "db.sqlite3", smtp_sink)) as worker:
        if outage == "stopped":
            smtp_sink.stop()
        else:
            smtp_sink.fail_temporarily()
        mail = question_mail("Is the certification threshold 75%?")
        await send(worker, mail.as_bytes(), DANA)
        await _wait_outbox_attempted(worker, minimum=2)
        [item] = await worker.store.outbox_list(channel="email")
        assert item.status in ("pending", "leased") and len(smtp_sink) == 0
        if outage == "stopped":
            smtp_sink.start()
        else:
            # attempts count at claim time, so wait until the relay has really refused twice
            deadline = time.monotonic() + 5
            while smtp_sink.rejected_count < 2:
                assert time.monotonic() < deadline, f"relay refused only {smtp_sink.rejected_count} time(s)"
                await asyncio.sleep(0.02)
            smtp_sink.recover()
        [reply] = await smtp_sink.wait_for_async(1, timeout=5)
        await smtp_sink.assert_quiet_async(0.8)  # several backoff periods: no second copy
        assert len(smtp_sink) == 1
        assert reply.message["In-Reply-To"] == mail["Message-ID"]
        [sent] = await worker.store.outbox_list(channel="email")
        assert sent.status == "sent" and sent.attempts >= 3


async def test_oversized_message_refused_with_552(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with running_worker(settings_for(tmp_path / "db.sqlite3", smtp_sink)) as worker:
        big = question_mail("Our report is attached.\n" + ("x" * 76 + "\n") * (10 * 1024 * 1024 // 77 + 10))
        raw = big.as_bytes()
        assert len(raw) > 10 * 1024 * 1024
        host, port = worker.address
        # smtplib announces SIZE (refused at MAIL FROM); a client that does not is refused after DATA.
        with pytest.raises(smtplib.SMTPResponseException) as exc:
            await asyncio.to_thread(send_eml, host, port, raw, DANA, "help@qopi-bot.test")
        assert exc.value.smtp_code == 552 and b"10 MB" in exc.value.smtp_error
        import aiosmtplib

        with pytest.raises(aiosmtplib.SMTPResponseException) as exc2:
            await aiosmtplib.send(raw, sender=DANA, recipients=["help@qopi-bot.test"], hostname=host, port=port,
                                  start_tls=False, timeout=20)
        assert exc2.value.code == 552 and "10 MB" in exc2.value.message
        assert await inbox_rows(worker.store) == []
        # The worker goes on: a normal message right after is answered.
        await send(worker, question_mail("Is the threshold 75%?").as_bytes(), DANA)
        await smtp_sink.wait_for_async(1)


async def test_database_unreachable_answers_451_then_recovers(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    missing = tmp_path / "not-there-yet"
    settings = settings_for(missing / "db.sqlite3", smtp_sink)
    async with running_worker(settings) as worker:
        mail = question_mail("Is the certification threshold 75%?").as_bytes()
        for _ in range(2):  # the worker stays up and keeps saying "try later"
            with pytest.raises(smtplib.SMTPResponseException) as exc:
                await send(worker, mail, DANA)
            assert exc.value.smtp_code == 451
        missing.mkdir()  # the database is back; the sending MTA retries
        assert await send(worker, mail, DANA) == 250
        [reply] = await smtp_sink.wait_for_async(1, timeout=10)
        assert reply.rcpt_tos == (DANA,)


async def test_bad_input_never_stops_the_worker(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with running_worker(settings_for(tmp_path / "db.sqlite3", smtp_sink)) as worker:
        garbage = [b"\x00\xff\xfe" * 100, b"From: <>\r\n\r\n\r\n", b"Subject: =?bogus?Q?=ZZ?=\r\nFrom: a@b.example\r\n\r\n\x00",
                   b"Content-Type: multipart/mixed; boundary=\r\nFrom: x@y.example\r\n\r\n--\r\n--\r\n"]
        for raw in garbage:
            assert await send(worker, raw, "x@y.example") == 250
        await settle(worker.store)
        assert all(r["status"] in ("done", "ignored") for r in await inbox_rows(worker.store))
        await send(worker, question_mail("Is the threshold 75%?").as_bytes(), DANA)
        await settle(worker.store)
        assert smtp_sink.messages_to(DANA)


def test_procfile_worker_survives_sigkill_and_answers_exactly_once(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    """`qopi-bot worker` from the Procfile, killed with SIGKILL after the 250 and before any
    reply could go out (the relay refuses), restarted: each message is answered exactly once."""
    entries = {e["file"]: e for e in manifest()}
    first = (CORPUS / "18_attachment_patient_chart.eml").read_bytes()
    second = (CORPUS / "19_phi_pasted_in_body.eml").read_bytes()
    env = env_for(tmp_path / "db.sqlite3", smtp_sink, QOPI_LEASE_SECONDS="1")
    smtp_sink.fail_temporarily()

    worker = WorkerProcess(env, tmp_path / "worker1.log")
    try:
        worker.wait_listening()
        send_eml("127.0.0.1", worker.port, first, entries["18_attachment_patient_chart.eml"]["envelope_from"],
                 "help@qopi-bot.test")
        deadline = time.monotonic() + 10
        while smtp_sink.rejected_count < 1:  # its reply reached the relay and was refused
            assert time.monotonic() < deadline, "the first reply was never attempted"
            time.sleep(0.02)
        send_eml("127.0.0.1", worker.port, second, entries["19_phi_pasted_in_body.eml"]["envelope_from"],
                 "help@qopi-bot.test")
    finally:
        worker.kill()  # right after the 250 of the second message
    assert len(smtp_sink) == 0

    smtp_sink.recover()
    worker = WorkerProcess(env, tmp_path / "worker2.log")
    try:
        worker.wait_listening()
        got = smtp_sink.wait_for(2, timeout=15)
        smtp_sink.assert_quiet(1.5)  # longer than the lease and the backoff: no duplicate
    finally:
        assert worker.terminate() == 0  # SIGTERM: a clean stop
    assert len(smtp_sink) == 2
    answered = sorted(m.message["In-Reply-To"] for m in got)
    assert answered == sorted(["<20260309141240.3B9F1A07C2@mail.northgate-cc.example.org>",
                               "<9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a@oakmont-ho.example.com>"])
    logs = (tmp_path / "worker1.log").read_text() + (tmp_path / "worker2.log").read_text()
    assert "email.received" in logs and "outbox.sent" in logs
    for name in ("18_attachment_patient_chart.eml", "19_phi_pasted_in_body.eml"):
        for ident in entries[name]["phi"]:
            assert ident.lower() not in logs.lower(), f"{ident!r} in the worker's stderr"
