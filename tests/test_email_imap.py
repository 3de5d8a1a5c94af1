"""The help mailbox over IMAP (contract section 11), against a real Dovecot on loopback:
answered and moved, automated mail moved but not answered, the history rule, big and broken
mail, TLS/STARTTLS, IDLE wake-up, polling, a server restart, dropped and silently dead
connections, and `qopi-bot worker` killed with SIGKILL between storing and moving."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.email_support import CORPUS, HELP, inbox_rows, question_mail, reply_text, running_worker, settle
from tests.fakes.dovecot import ThrowawayDovecot
from tests.fakes.smtp_sink import SmtpSink, smtp_sink  # noqa: F401  (fixture)
from tests.fakes.tcp_proxy import TcpProxy
from tests.imap_support import (  # noqa: F401  (fixture)
    ImapWorkerProcess, _dovecot_or_skip, dovecot, imap_env, imap_settings, inbox_statuses, watching,
)
from tests.waiting import wait_until
from tests.fakes.postgres import free_port

DANA = "dana.whitfield@riverbend-onc.example.org"
DONE = "QOPI/Done"


async def _watching(db: Path, timeout: float = 15.0) -> None:
    await asyncio.to_thread(wait_until, lambda: watching(db), timeout, "the worker to meet the mailbox")


async def _deliver(server: ThrowawayDovecot, raw: bytes) -> int:
    return await asyncio.to_thread(server.append, raw)


async def _moved(server: ThrowawayDovecot, count: int, timeout: float = 10.0) -> None:
    await asyncio.to_thread(wait_until, lambda: len(server.uids(DONE)) >= count and not server.uids("INBOX"),
                            timeout, f"{count} message(s) moved to {DONE}")


async def test_question_answered_threaded_and_moved(tmp_path: Path, smtp_sink: SmtpSink, dovecot: ThrowawayDovecot) -> None:
    db = tmp_path / "db.sqlite3"
    async with running_worker(imap_settings(db, smtp_sink, dovecot)) as worker:
        await _watching(db)
        mail = question_mail("What score do we need to be eligible for QOPI certification?")
        uid = await _deliver(dovecot, mail.as_bytes())
        [reply] = await smtp_sink.wait_for_async(1, timeout=10)
        assert reply.rcpt_tos == (DANA,)
        assert reply.message["In-Reply-To"] == mail["Message-ID"]
        assert reply.message["Subject"] == "Re: Score validity"
        assert reply.message["Auto-Submitted"] == "auto-replied"
        assert "75" in reply_text(reply)
        await _moved(dovecot, 1)
        [row] = [r for r in await inbox_rows(worker.store) if r["source"] == "email"]
        assert re.fullmatch(rf"imap:.+;UIDVALIDITY=\d+;UID={uid}", row["external_id"])
        # The practice answers our reply: the same conversation continues.
        follow = question_mail("We scored 81% on the certification pathway in Fall 2025.", subject="Re: Score validity",
                               in_reply_to=reply.message["Message-ID"], references=[mail["Message-ID"],
                                                                                     reply.message["Message-ID"]])
        await _deliver(dovecot, follow.as_bytes())
        replies = await smtp_sink.wait_for_async(2, timeout=10)
        assert replies[1].message["In-Reply-To"] == follow["Message-ID"]
        assert mail["Message-ID"] in replies[1].message["References"]
        await settle(worker.store)
        await _moved(dovecot, 2)


async def test_automated_mail_is_moved_never_answered(tmp_path: Path, smtp_sink: SmtpSink,
                                                      dovecot: ThrowawayDovecot) -> None:
    db = tmp_path / "db.sqlite3"
    async with running_worker(imap_settings(db, smtp_sink, dovecot)) as worker:
        await _watching(db)
        for name in ("29_ooo_auto_submitted.eml", "34_bounce_dsn_multipart_report.eml", "36_mailing_list_post.eml",
                     "39_loop_from_help_address.eml"):
            await _deliver(dovecot, (CORPUS / name).read_bytes())
        bounce = question_mail("Delivery failed", sender="someone@practice.example.org")
        bounce["Return-Path"] = "<>"  # as the delivering MTA records an empty envelope sender
        await _deliver(dovecot, bounce.as_bytes())
        await _moved(dovecot, 5)
        await settle(worker.store)
        # A person's question after them is answered: the only reply.
        await _deliver(dovecot, question_mail("Is 74.99% enough to pass?").as_bytes())
        [reply] = await smtp_sink.wait_for_async(1, timeout=10)
        assert reply.rcpt_tos == (DANA,)
        await settle(worker.store)
        await smtp_sink.assert_quiet_async(0.3)
        assert len(smtp_sink) == 1
        statuses = sorted(inbox_statuses(db).values())
        assert statuses == ["done"] + ["ignored"] * 5
        await _moved(dovecot, 6)


async def test_history_is_left_alone_on_first_start(tmp_path: Path, smtp_sink: SmtpSink,
                                                    dovecot: ThrowawayDovecot) -> None:
    old = [question_mail(f"Old question {n}: what is the threshold?", sender=f"old{n}@practice.example.org").as_bytes()
           for n in range(1000)]
    await asyncio.to_thread(dovecot.append_many, old)
    db = tmp_path / "db.sqlite3"
    settings = imap_settings(db, smtp_sink, dovecot)
    for _restart in range(2):  # the rule holds across restarts: the mark is in the database
        async with running_worker(settings) as worker:
            await _watching(db)
            new = question_mail("Is the threshold 75%?")
            await _deliver(dovecot, new.as_bytes())
            [reply] = await smtp_sink.wait_for_async(1, timeout=10)
            assert reply.message["In-Reply-To"] == new["Message-ID"]
            await settle(worker.store)
        smtp_sink.clear()
    assert len(dovecot.uids("INBOX")) == 1000  # history untouched, where it was
    assert len(dovecot.uids(DONE)) == 2
    assert len(inbox_statuses(db)) == 2


async def test_backfill_answers_what_was_there(tmp_path: Path, smtp_sink: SmtpSink, dovecot: ThrowawayDovecot) -> None:
    for n in range(3):
        await _deliver(dovecot, question_mail("Is the threshold 75%?", sender=f"q{n}@practice.example.org").as_bytes())
    db = tmp_path / "db.sqlite3"
    async with running_worker(imap_settings(db, smtp_sink, dovecot, QOPI_IMAP_BACKFILL="true")) as worker:
        replies = await smtp_sink.wait_for_async(3, timeout=10)
        assert sorted(r.rcpt_tos[0] for r in replies) == [f"q{n}@practice.example.org" for n in range(3)]
        await _moved(dovecot, 3)
        await settle(worker.store)


async def test_two_mb_attachment_and_malformed_mail(tmp_path: Path, smtp_sink: SmtpSink,
                                                    dovecot: ThrowawayDovecot) -> None:
    db = tmp_path / "db.sqlite3"
    async with running_worker(imap_settings(db, smtp_sink, dovecot)) as worker:
        await _watching(db)
        big = question_mail("Our report is attached. Is 81% in Fall 2025 enough?")
        big.add_attachment(bytes(range(256)) * (2 * 1024 * 1024 // 256), maintype="application", subtype="pdf",
                           filename="chart-MRN-12345.pdf")
        assert len(big.as_bytes()) > 2 * 1024 * 1024
        await _deliver(dovecot, big.as_bytes())
        [reply] = await smtp_sink.wait_for_async(1, timeout=15)
        assert "attachment" in reply_text(reply).lower()
        await _deliver(dovecot, b"\x00\xff\xfeThis is not: a message\r\n--boundary\r\n\r\n\x00garbage")
        await _deliver(dovecot, (CORPUS / "41_malformed_missing_closing_boundary.eml").read_bytes())
        await _moved(dovecot, 3, timeout=15)
        await settle(worker.store)
        replies = await smtp_sink.wait_for_async(2, timeout=10)  # the broken-MIME question is still answered
        assert len(replies) == 2
        rows = [r for r in await inbox_rows(worker.store) if r["source"] == "email"]
        assert all(r["status"] in ("done", "ignored") for r in rows) and len(rows) == 3
        stored_big = rows[0]["payload"]
        assert len(stored_big) < 100_000 and b"chart-MRN" not in stored_big  # the attachment is not kept
        # Still working afterwards.
        await _deliver(dovecot, question_mail("Is the threshold 75%?").as_bytes())
        await smtp_sink.wait_for_async(3, timeout=10)


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls(tmp_path: Path, smtp_sink: SmtpSink, security: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    _dovecot_or_skip()
    server = ThrowawayDovecot(user=HELP, tls=True).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", server.ca_file)  # trust the throwaway CA, as an operator's CA bundle would
        db = tmp_path / "db.sqlite3"
        port = server.tls_port if security == "tls" else server.port
        settings = imap_settings(db, smtp_sink, server, QOPI_IMAP_HOST="localhost", QOPI_IMAP_PORT=str(port),
                                 QOPI_IMAP_SECURITY=security)
        async with running_worker(settings) as worker:
            await _watching(db)
            await _deliver(server, question_mail("Is the threshold 75%?").as_bytes())
            await smtp_sink.wait_for_async(1, timeout=10)
            await settle(worker.store)
    finally:
        server.cleanup()


async def test_idle_wakes_the_worker_and_polling_servers_work(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    """With IDLE an answer comes well before the (60 s) poll could explain it; a server
    without IDLE is polled (QOPI_IMAP_POLL_SECONDS, default 5 s)."""
    _dovecot_or_skip()
    for idle in (True, False):
        server = ThrowawayDovecot(user=HELP, idle=idle).start()
        try:
            db = tmp_path / f"db-{idle}.sqlite3"
            extra = {} if idle else {"QOPI_IMAP_POLL_SECONDS": "5"}
            async with running_worker(imap_settings(db, smtp_sink, server, **extra)) as worker:
                await _watching(db)
                await asyncio.sleep(0.5)  # let the worker settle into IDLE (or its poll wait)
                await _deliver(server, question_mail("Is the threshold 75%?").as_bytes())
                await smtp_sink.wait_for_async(1, timeout=10)
                await settle(worker.store)
            smtp_sink.clear()
        finally:
            server.cleanup()


async def test_server_restart_mid_session(tmp_path: Path, smtp_sink: SmtpSink, dovecot: ThrowawayDovecot) -> None:
    db = tmp_path / "db.sqlite3"
    async with running_worker(imap_settings(db, smtp_sink, dovecot)) as worker:
        await _watching(db)
        await _deliver(dovecot, question_mail("Is the threshold 75%?").as_bytes())
        await smtp_sink.wait_for_async(1, timeout=10)
        await asyncio.to_thread(dovecot.stop)
        await asyncio.sleep(1.5)  # the worker notices and backs off while the server is away
        await asyncio.to_thread(dovecot.start)
        second = question_mail("How long is a Spring 2025 score valid?")
        await _deliver(dovecot, second.as_bytes())
        replies = await smtp_sink.wait_for_async(2, timeout=30)
        assert replies[1].message["In-Reply-To"] == second["Message-ID"]
        await settle(worker.store)
        await smtp_sink.assert_quiet_async(0.5)
        assert len(smtp_sink) == 2  # the first question was not answered again after reconnecting
        await _moved(dovecot, 2)


@pytest.mark.parametrize("fault", ["drop", "freeze"])
async def test_dropped_and_silently_dead_connections(tmp_path: Path, smtp_sink: SmtpSink, dovecot: ThrowawayDovecot,
                                                     fault: str) -> None:
    """`drop`: the connection is reset. `freeze`: it stays open but carries nothing (a NAT
    timeout); only re-IDLE (here every 2 s) notices, and the worker reconnects."""
    proxy = TcpProxy("127.0.0.1", dovecot.port).start()
    try:
        db = tmp_path / "db.sqlite3"
        settings = imap_settings(db, smtp_sink, dovecot, QOPI_IMAP_PORT=str(proxy.port), QOPI_IMAP_IDLE_SECONDS="2")
        async with running_worker(settings) as worker:
            await _watching(db)
            await asyncio.sleep(0.5)
            getattr(proxy, fault)()
            connections = proxy.connections
            mail = question_mail("Is the threshold 75%?")
            await _deliver(dovecot, mail.as_bytes())
            [reply] = await smtp_sink.wait_for_async(1, timeout=30)
            assert reply.message["In-Reply-To"] == mail["Message-ID"]
            assert proxy.connections > connections  # answered through a new connection
            await settle(worker.store)
            await _moved(dovecot, 1)
    finally:
        proxy.stop()


def test_kill9_between_store_and_move_loses_and_doubles_nothing(tmp_path: Path, smtp_sink: SmtpSink,
                                                                dovecot: ThrowawayDovecot) -> None:
    db = tmp_path / "db.sqlite3"
    env = imap_env(db, smtp_sink, dovecot, QOPI_IMAP_BACKFILL="true")
    mails = [question_mail("Is the threshold 75%?", sender=f"q{n}@practice.example.org") for n in range(40)]
    dovecot.append_many([m.as_bytes() for m in mails])
    log = tmp_path / "worker.log"
    # The first worker's relay refuses connections, so the kill lands between storing and moving
    # (what this test is about), never between a reply leaving and its "sent" mark being written:
    # that window, common to every SMTP outbox, is documented in docs/production.md.
    first = ImapWorkerProcess({**env, "QOPI_SMTP_RELAY": f"127.0.0.1:{free_port()}"}, log)
    group = first.proc.pid  # its own session: the whole process group

    def between_store_and_move() -> bool:
        # Messages are moved 20 at a time once all of them are stored. The worker is frozen
        # while we look, so what we see is what the kill leaves: some stored, still in INBOX.
        os.killpg(group, signal.SIGSTOP)
        if len(inbox_statuses(db)) + len(dovecot.uids("INBOX")) > 40:
            return True
        os.killpg(group, signal.SIGCONT)
        return False

    try:
        wait_until(lambda: len(inbox_statuses(db)) >= 1 or "email.imap_watching" in first.log(), 30, "the worker to start")
        wait_until(between_store_and_move, 30, "a moment with mail stored but not yet moved", interval=0.005)
    finally:
        first.kill()
    stored = len(inbox_statuses(db))
    in_folder = len(dovecot.uids("INBOX"))
    assert stored + in_folder > 40, f"nothing was caught between store and move ({stored} stored, {in_folder} left)"

    second = ImapWorkerProcess(env, log)
    try:
        wait_until(lambda: len(smtp_sink.messages) >= 40 and not dovecot.uids("INBOX"), 60,
                   "all 40 answered and moved")
        wait_until(lambda: all(s == "done" for s in inbox_statuses(db).values()), 20, "every message handled")
        time.sleep(0.5)
    finally:
        assert second.terminate() == 0
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == sorted(f"q{n}@practice.example.org" for n in range(40))
    assert len(dovecot.uids(DONE)) == 40
    assert len(inbox_statuses(db)) == 40
    assert "email.duplicate" in second.log()  # the stored-but-not-moved ones were recognised
    assert "Is the threshold" not in log.read_text()  # bodies never reach the log


def test_wrong_password_is_logged_clearly_and_the_worker_stays_up(tmp_path: Path, smtp_sink: SmtpSink,
                                                                  dovecot: ThrowawayDovecot) -> None:
    db = tmp_path / "db.sqlite3"
    log = tmp_path / "worker.log"
    worker = ImapWorkerProcess(imap_env(db, smtp_sink, dovecot, QOPI_IMAP_PASSWORD="wrong"), log)
    try:
        wait_until(lambda: "email.imap_config" in worker.log(), 20, "a clear login error")
        assert "check the credentials" in worker.log()
        assert "wrong" not in worker.log()  # the password is not logged
        assert worker.proc.poll() is None
    finally:
        assert worker.terminate() == 0


class _TokenIntrospection:
    """The identity provider's token-introspection endpoint Dovecot asks about XOAUTH2
    tokens (RFC 7662): a local stand-in knowing one valid token."""

    def __init__(self, valid: str, user: str) -> None:
        import http.server
        import threading
        import urllib.parse

        outer = self
        self.seen: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                token = (urllib.parse.parse_qs(body).get("token") or [""])[0] or \
                    self.headers.get("Authorization", "").removeprefix("Bearer ")
                outer.seen.append(token)
                answer = f'{{"active": true, "username": "{user}"}}' if token == valid else '{"active": false}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(answer.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/introspect"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_xoauth2_token_file_is_reread_at_login(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    """An expired token is refused with a clear hint; once the operator writes a fresh one to
    QOPI_IMAP_OAUTH2_TOKEN_FILE, the worker logs in with it at its next attempt, no restart."""
    _dovecot_or_skip()
    idp = _TokenIntrospection(valid="fresh-token", user=HELP)
    server = ThrowawayDovecot(user=HELP, oauth2_introspection_url=idp.url).start()
    token_file = tmp_path / "imap-token"
    token_file.write_text("expired-token\n")
    db = tmp_path / "db.sqlite3"
    worker = ImapWorkerProcess(imap_env(db, smtp_sink, server, QOPI_IMAP_PASSWORD="",
                                        QOPI_IMAP_OAUTH2_TOKEN_FILE=str(token_file)), tmp_path / "worker.log")
    try:
        wait_until(lambda: "refresh the token" in worker.log(), 20, "the refused token to be logged")
        assert "expired-token" in idp.seen and "expired-token" not in worker.log()
        token_file.write_text("fresh-token\n")
        wait_until(lambda: "email.imap_watching" in worker.log(), 90, "a login with the refreshed token")
        server.append(question_mail("Is the threshold 75%?").as_bytes())
        smtp_sink.wait_for(1, timeout=10)
    finally:
        assert worker.terminate() == 0
        server.cleanup()
        idp.server.shutdown()


async def test_uidvalidity_change_keeps_history_by_arrival_time(tmp_path: Path, smtp_sink: SmtpSink,
                                                                 dovecot: ThrowawayDovecot) -> None:
    """The watched folder is recreated (a new UIDVALIDITY) holding a day-old message: UIDs no
    longer tell old from new, arrival time against the first start does."""
    def recreate(with_old: bool) -> None:
        c = dovecot.client()
        c.delete('"Help"')
        c.create('"Help"')
        c.logout()
        if with_old:
            old = question_mail("An old question: is 75% enough?", sender="old@practice.example.org").as_bytes()
            dovecot.append(old, "Help", time.time() - 86_400)

    db = tmp_path / "db.sqlite3"
    settings = imap_settings(db, smtp_sink, dovecot, QOPI_IMAP_FOLDER="Help")
    await asyncio.to_thread(recreate, False)
    async with running_worker(settings):
        await _watching(db)  # the first start: the mark is recorded for this UIDVALIDITY
    await asyncio.to_thread(recreate, True)
    async with running_worker(settings) as worker:
        new = question_mail("Is the threshold 75%?")
        await asyncio.to_thread(dovecot.append, new.as_bytes(), "Help")
        [reply] = await smtp_sink.wait_for_async(1, timeout=10)
        assert reply.message["In-Reply-To"] == new["Message-ID"]
        await settle(worker.store)
    await smtp_sink.assert_quiet_async(0.3)
    assert len(smtp_sink) == 1
    assert len(dovecot.uids("Help")) == 1  # the day-old message stays where it was, unanswered


async def test_a_delivery_burst_is_stored_answered_and_moved(tmp_path: Path, smtp_sink: SmtpSink,
                                                              dovecot: ThrowawayDovecot) -> None:
    """A delivery burst: messages keep arriving while the worker fetches, stores (several per
    commit) and moves the first ones; every one is answered once and moved, none left behind.
    (The sweep also looks again after finding mail, since a server may announce mail that
    arrived meanwhile only in its answers to the sweep's own commands; Dovecot announces it
    once more as RECENT when IDLE starts, so this test cannot tell that guard is there.)"""
    db = tmp_path / "db.sqlite3"
    count = 80
    async with running_worker(imap_settings(db, smtp_sink, dovecot)) as worker:
        await _watching(db)
        mails = [question_mail("Is the threshold 75%?", sender=f"s{n}@practice.example.org").as_bytes() for n in range(count)]
        await asyncio.to_thread(dovecot.append_many, mails)  # one connection, as fast as it goes
        replies = await smtp_sink.wait_for_async(count, timeout=60)
        await _moved(dovecot, count, timeout=30)
        rows = [r for r in await inbox_rows(worker.store) if r["source"] == "email"]
        assert {r["status"] for r in rows} == {"done"} and len(rows) == count
    await asyncio.sleep(0.3)  # a second reply to anyone would have arrived by now
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == sorted(f"s{n}@practice.example.org" for n in range(count))
    assert len(replies) == count
