"""Scale-out and faults on PostgreSQL, with the processes as deployed (issue 8).

Real `qopi-bot serve` and `qopi-bot worker` processes (the Procfile's commands), several
at once on one throwaway PostgreSQL, against the Slack stand-in (FakeSlackAPI) and an SMTP
sink as the relay. Nothing is answered twice, nothing is lost: Slack retries and duplicate
mail across processes, rate limits and server errors, a relay outage, a worker killed while
it held a reply, the database stopped under traffic, giving up visibly -- and no patient
identifier in any process's log. Each test gets a fresh database on one shared server."""

from __future__ import annotations

import collections
import json
import signal
import smtplib
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.email_support import ROOT, procfile_command, question_mail
from tests.fakes import slack_signing as ss
from tests.fakes.pg_fixture import postgres_server, postgres_url  # noqa: F401  (fixtures)
from tests.fakes.postgres import ThrowawayPostgres
from tests.fakes.slack_api import FakeSlackAPI
from tests.waiting import wait_until
from tests.fakes.smtp_sink import SmtpSink, find_free_port, send_eml, smtp_sink  # noqa: F401  (fixture)
from tests.slack_harness import SECRET, fake, process_env, slack_env  # noqa: F401  (fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HELP = "help@qopi-bot.test"
STAFF = "qcp-staff@qopi-bot.test"
LEASE = 3
QUESTIONS = ["Is 80% enough to pass?", "How long is a Fall 2025 score valid?", "How many certification standards are there?",
             "Which modules do we need to submit data for?", "Is 74.99% enough to pass?"]


# ---------------------------------------------------------------------------- processes
class Proc:
    """One `qopi-bot serve` (web) or `qopi-bot worker` process, stdout+stderr in a file."""

    def __init__(self, kind: str, env: dict[str, str], log: Path) -> None:
        self.kind, self.log = kind, log
        self.port = find_free_port()
        own = {"PORT": str(self.port)} if kind == "web" else {"QOPI_SMTP_LISTEN": f"127.0.0.1:{self.port}"}
        self._out = log.open("ab")
        self.proc = subprocess.Popen(procfile_command(kind), cwd=ROOT, env=process_env({**env, **own}),
                                     stdout=self._out, stderr=self._out, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def healthz(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                return json.loads(resp.read()) if resp.status == 200 else None
        except OSError:
            return None

    def listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.3).close()
            return True
        except OSError:
            return False

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.alive(), f"{self.kind} exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}"
            if self.kind == "web" and (self.healthz() or {}).get("database"):
                return
            if self.kind == "worker" and self.listening():
                return
            assert time.monotonic() < deadline, f"{self.kind} did not become ready: {self.log.read_text()[-2000:]}"
            time.sleep(0.05)

    # --- traffic
    def post(self, body: Any, **kw: Any) -> int:
        return ss.post_signed(self.url + "/slack/events", body, SECRET, timeout=10, **kw)[0]

    def mail(self, raw: bytes, sender: str) -> None:
        """Deliver like an MTA; raises smtplib.SMTPResponseException (451...) when refused."""
        send_eml("127.0.0.1", self.port, raw, sender, HELP, 10.0)

    # --- ending
    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()
        return self.proc.returncode


class Stack:
    """One fresh database on the shared PostgreSQL server, the Slack stand-in, the relay
    sink, and the processes started on them (stopped at the end of the test)."""

    def __init__(self, tmp_path: Path, pg: ThrowawayPostgres, url: str, fake: FakeSlackAPI, sink: SmtpSink) -> None:
        self.tmp_path, self.pg, self.url, self.fake, self.sink = tmp_path, pg, url, fake, sink
        self.procs: list[Proc] = []

    def env(self, **extra: str) -> dict[str, str]:
        ours = {"DATABASE_URL": self.url, "QOPI_SMTP_RELAY": self.sink.address, "QOPI_HELP_ADDRESS": HELP,
                "QOPI_STAFF_EMAIL": STAFF, "QOPI_LEASE_SECONDS": str(LEASE)}
        return slack_env(self.tmp_path, self.fake, **{**ours, **extra})

    def upgrade(self) -> Stack:
        done = Cli(self.url).run("db", "upgrade")  # as an operator does before starting processes
        assert done.returncode == 0, done.stderr
        return self

    def sql(self, query: str) -> list[list[str]]:
        out = self.pg.psql(query, database=self.url.rsplit("/", 1)[1])
        return [line.split("|") for line in out.splitlines() if line]

    def start(self, web: int = 0, worker: int = 0, **extra: str) -> list[Proc]:
        """`web` serve and `worker` worker processes, started together; returned once all are ready."""
        kinds = ["web"] * web + ["worker"] * worker
        started = [Proc(kind, self.env(**extra), self.tmp_path / f"{kind}{len(self.procs) + i + 1}.log")
                   for i, kind in enumerate(kinds)]
        self.procs += started
        for p in started:
            p.wait_ready()
        return started

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


@pytest.fixture
def stack(tmp_path: Path, postgres_server: ThrowawayPostgres, postgres_url: str,  # noqa: F811
          fake: FakeSlackAPI, smtp_sink: SmtpSink) -> Iterator[Stack]:  # noqa: F811
    s = Stack(tmp_path, postgres_server, postgres_url, fake, smtp_sink)
    try:
        yield s
    finally:
        s.stop()


def answers(fake: FakeSlackAPI, prefix: str) -> collections.Counter[tuple[str, str | None]]:
    """(channel, thread) of every successful post to channels starting with `prefix`."""
    return collections.Counter((p["channel"], p.get("thread_ts")) for p in fake.posts() if p["channel"].startswith(prefix))


def mention(channel: str, text: str = QUESTIONS[0]) -> dict[str, Any]:
    return ss.event_callback(ss.app_mention(text, channel=channel))


def practice_mail(n: int, text: str, message_id: str | None = None) -> tuple[str, bytes, str]:
    sender = f"quality{n}@practice{n}.example.org"
    msg = question_mail(text, subject=f"Question {n}", sender=sender, message_id=message_id)
    return sender, msg.as_bytes(), msg["Message-ID"]


def replied_to(sink: SmtpSink) -> collections.Counter[str]:
    return collections.Counter(str(m.message["In-Reply-To"]) for m in sink.messages)


# ---------------------------------------------------------------------------- tests
def test_unmigrated_database_waits_in_both_processes(stack: Stack) -> None:
    """One policy for both channels (issue 15): on an unmigrated database `web` and `worker`
    keep running, report not_ready, answer "try later" (503 / 451, so Slack and the MTA
    retry) and log the command that fixes it; once `qopi-bot db upgrade` has run they serve,
    without a restart."""
    health = find_free_port()
    web = Proc("web", stack.env(), stack.tmp_path / "web.log")
    worker = Proc("worker", stack.env(QOPI_WORKER_HEALTH=f"127.0.0.1:{health}"), stack.tmp_path / "worker.log")
    stack.procs += [web, worker]

    def worker_state() -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1) as resp:
                return str(json.loads(resp.read())["database_state"])
        except OSError:
            return None

    wait_until(lambda: (web.healthz() or {}).get("database_state") == "not_ready", 30, "web to report not_ready")
    wait_until(lambda: worker.listening() and worker_state() == "not_ready", 30, "the worker to report not_ready")
    assert web.post(mention("CUNM")) == 503
    sender, raw, _ = practice_mail(0, "Is the certification threshold 75%?")
    with pytest.raises(smtplib.SMTPResponseException) as refused:
        worker.mail(raw, sender)
    assert refused.value.smtp_code == 451
    for p in (web, worker):
        assert p.alive() and "qopi-bot db upgrade" in p.log.read_text()
        assert "Traceback" not in p.log.read_text()

    stack.upgrade()
    web.wait_ready()  # /healthz says the database is there
    wait_until(lambda: worker_state() == "ok", 30, "the worker to notice the migration")
    assert web.post(mention("CUNM")) == 200  # Slack's retry
    worker.mail(raw, sender)  # the MTA's retry
    wait_until(lambda: answers(stack.fake, "CUNM") and len(stack.sink.messages) == 1, 30, "both answers")
    assert list(answers(stack.fake, "CUNM").values()) == [1]


def test_two_web_and_two_workers_answer_each_message_once(stack: Stack) -> None:
    web1, web2, worker1, worker2 = stack.upgrade().start(web=2, worker=2)
    fake, sink = stack.fake, stack.sink
    with ThreadPoolExecutor(8) as pool:
        # The same event at both web processes at once, the second as Slack's retry.
        twice = mention("CDUP")
        first = pool.submit(web1.post, twice)
        retry = pool.submit(web2.post, twice, retry_num=1, retry_reason="http_timeout")
        assert (first.result(), retry.result()) == (200, 200)
        # A burst of distinct events spread over both; every third one also retried on the other.
        burst = [mention(f"CB{i:02d}", QUESTIONS[i % len(QUESTIONS)]) for i in range(20)]
        sends = [pool.submit((web1, web2)[i % 2].post, e) for i, e in enumerate(burst)]
        sends += [pool.submit((web2, web1)[i % 2].post, e, retry_num=1, retry_reason="http_timeout")
                  for i, e in enumerate(burst) if i % 3 == 0]
        assert {f.result() for f in sends} == {200}

        # The same mail at both workers at once (an MTA retrying elsewhere), then distinct mails.
        sender, raw, same_id = practice_mail(0, "Is the certification threshold 75%?")
        for f in [pool.submit(w.mail, raw, sender) for w in (worker1, worker2)]:
            f.result()
        mails = [practice_mail(i, QUESTIONS[i % len(QUESTIONS)]) for i in range(1, 11)]
        for f in [pool.submit((worker1, worker2)[i % 2].mail, raw, s) for i, (s, raw, _) in enumerate(mails)]:
            f.result()

    wait_until(lambda: sum(answers(fake, "C").values()) >= 21, 30, "21 Slack answers")
    sink.wait_for(11, timeout=30)
    time.sleep(1.5)  # several poll intervals and backoff periods: room for a duplicate to show
    posted = answers(fake, "C")
    expected = {(e["event"]["channel"], e["event"]["ts"]) for e in [twice, *burst]}
    assert set(posted) == expected and set(posted.values()) == {1}, posted
    assert replied_to(sink) == collections.Counter([same_id] + [mid for _, _, mid in mails])
    assert stack.sql("select source, status, count(*) from inbox group by 1, 2 order by 1, 2") == [
        ["email", "done", "11"], ["slack", "done", "21"]]
    # The work really was shared: both web processes acked events, both workers stored mail.
    assert all("slack.acked" in w.log.read_text() for w in (web1, web2))
    assert all("email.received" in w.log.read_text() for w in (worker1, worker2))


def test_rate_limit_then_server_errors_post_once_after_retry_after(stack: Stack) -> None:
    web1, _web2 = stack.upgrade().start(web=2)
    fake = stack.fake
    fake.fail_next("chat.postMessage", 429, retry_after=1)
    fake.fail_next("chat.postMessage", 500)
    fake.fail_next("chat.postMessage", 503)
    event = mention("CRATE")
    assert web1.post(event) == 200
    calls = fake.wait_for("chat.postMessage", 4, timeout=20)
    time.sleep(1.0)
    assert [c.status for c in fake.calls_for("chat.postMessage")] == [429, 500, 503, 200]
    assert calls[1].time - calls[0].time >= 0.95, "the retry did not wait for Retry-After"
    assert answers(fake, "CRATE") == {("CRATE", event["event"]["ts"]): 1}
    assert stack.sql("select status, attempts from outbox") == [["sent", "4"]]


def test_relay_down_delays_the_reply_and_never_loses_it(stack: Stack) -> None:
    worker1, _worker2 = stack.upgrade().start(worker=2)
    sink = stack.sink
    sink.stop()
    sender, raw, message_id = practice_mail(1, "Is the certification threshold 75%?")
    worker1.mail(raw, sender)
    wait_until(lambda: stack.sql("select id from outbox where status in ('pending', 'leased') and attempts >= 3 "
                                 "and last_error like '%relay%'"), 15, "three refused attempts")
    assert len(sink) == 0
    sink.start()
    [reply] = sink.wait_for(1, timeout=15)
    sink.assert_quiet(1.5)
    assert reply.message["In-Reply-To"] == message_id and reply.rcpt_tos == (sender,)
    assert stack.sql("select status from outbox") == [["sent"]]


class BlackHoleRelay:
    """A 'relay' that accepts TCP connections and never says a word: a send to it hangs,
    so the reply stays leased by the process trying it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.connections:
            c.close()


def test_worker_killed_holding_a_reply_other_worker_sends_it_after_the_lease(stack: Stack) -> None:
    hole = BlackHoleRelay()
    try:
        [doomed] = stack.upgrade().start(worker=1, QOPI_SMTP_RELAY=hole.address)
        sender, raw, message_id = practice_mail(4, "How long is a Fall 2025 score valid?")
        doomed.mail(raw, sender)  # 250: stored
        wait_until(lambda: hole.connections, 10, "the reply reaching the relay")
        # It holds the reply now, mid-send. Another worker starts and must not take it yet.
        [survivor] = stack.start(worker=1)
        asked = time.time()
        [[status, left]] = stack.sql("select status, extract(epoch from lease_until - now()) from outbox")
        assert status == "leased" and float(left) > 0.5
        lease_end = asked + float(left)  # at the earliest
        doomed.kill()  # SIGKILL: no cleanup; the lease stays until it runs out
        [reply] = stack.sink.wait_for(1, timeout=LEASE + 10)
        assert reply.received_at >= lease_end - 0.1, "sent before the lease ran out"
        stack.sink.assert_quiet(1.5)
        assert reply.message["In-Reply-To"] == message_id
        assert "outbox.sent" in survivor.log.read_text()
        assert stack.sql("select status, attempts from outbox") == [["sent", "2"]]
    finally:
        hole.close()


def test_database_stopped_under_traffic_nothing_acked_nothing_lost(stack: Stack) -> None:
    web, worker = stack.upgrade().start(web=1, worker=1)
    fake, sink = stack.fake, stack.sink
    before = mention("CUP")
    assert web.post(before) == 200
    wait_until(lambda: answers(fake, "CUP"), 15, "an answer before the outage")

    stack.pg.stop()
    try:
        during = mention("CDOWN")
        assert web.post(during) != 200  # not stored, so not acknowledged: Slack sends it again
        sender, raw, message_id = practice_mail(5, "Is the certification threshold 75%?")
        with pytest.raises(smtplib.SMTPResponseException) as refused:
            worker.mail(raw, sender)
        assert refused.value.smtp_code == 451  # the sending MTA keeps it and retries
        time.sleep(1.0)  # the processes keep running through it, and say so
        assert web.alive() and worker.alive() and web.healthz() == {"ok": True, "database": False, "database_state": "unreachable"}
    finally:
        stack.pg.start()

    # The senders retry; both processes have reconnected by themselves.
    wait_until(lambda: web.post(during, retry_num=1, retry_reason="http_error") == 200, 20, "Slack's retry accepted")

    def mail_accepted() -> bool:
        try:
            worker.mail(raw, sender)
            return True
        except smtplib.SMTPResponseException as exc:
            assert exc.smtp_code == 451
            return False
    wait_until(mail_accepted, 20, "the MTA's retry accepted", interval=0.3)
    after = mention("CAFTER")
    assert web.post(after) == 200
    later_sender, later_raw, later_id = practice_mail(6, "How many certification standards are there?")
    worker.mail(later_raw, later_sender)

    wait_until(lambda: len(answers(fake, "C")) >= 3, 20, "Slack answers after the outage")
    sink.wait_for(2, timeout=20)
    time.sleep(1.0)
    assert answers(fake, "C") == {("CUP", before["event"]["ts"]): 1, ("CDOWN", during["event"]["ts"]): 1,
                                  ("CAFTER", after["event"]["ts"]): 1}
    assert replied_to(sink) == {message_id: 1, later_id: 1}
    assert web.alive() and worker.alive() and (web.healthz() or {}).get("database") is True
    logs = web.log.read_text() + worker.log.read_text()
    assert "slack.store_failed" in logs and "email.store_failed" in logs


PHI = {"name": "Eleanor Vance", "dob": "03/14/1958", "mrn": "00482913", "ssn": "123-45-6789"}
PHI_TEXT = (f"Quick question about our patient {PHI['name']}, DOB {PHI['dob']}, MRN {PHI['mrn']}, "
            f"SSN {PHI['ssn']}: does her chart count toward our QOPI sample? We scored 81% in Fall 2025.")


def test_patient_identifiers_never_reach_any_log(stack: Stack) -> None:
    web, worker = stack.upgrade().start(web=1, worker=1)
    assert web.post(ss.event_callback(ss.dm_message(PHI_TEXT, user="U7", channel="D7"))) == 200
    assert web.post(mention("CPHI", PHI_TEXT)) == 200
    sender = "quality7@practice7.example.org"
    msg = question_mail(PHI_TEXT, subject=f"Chart question re {PHI['name']} MRN {PHI['mrn']}", sender=sender)
    worker.mail(msg.as_bytes(), sender)
    wait_until(lambda: {"D7", "CPHI"} <= {c for c, _ in answers(stack.fake, "")}, 20, "both Slack answers")
    stack.sink.wait_for(1, timeout=20)
    time.sleep(0.5)
    stack.stop()  # SIGTERM: the shutdown is logged too
    lines = [line for p in (web, worker) for line in p.log.read_text(errors="replace").splitlines()]
    events = []
    for line in lines:
        record = json.loads(line)  # every line is one JSON object ...
        assert isinstance(record, dict) and record.get("event"), line  # ... with an event name
        events.append(record["event"])
    assert {"slack.acked", "slack.processed", "email.received", "email.processed", "outbox.sent"} <= set(events)
    text = "\n".join(lines)
    for what, value in PHI.items():
        assert value not in text, f"patient {what} in a log"
    assert "Vance" not in text and "482913" not in text


def test_give_up_marks_failed_and_outbox_list_shows_it(stack: Stack) -> None:
    stack.sink.stop()
    [worker] = stack.upgrade().start(worker=1, QOPI_OUTBOX_GIVE_UP_AFTER="2")
    sender, raw, _ = practice_mail(8, "Is the certification threshold 75%?")
    worker.mail(raw, sender)
    wait_until(lambda: stack.sql("select id from outbox where status = 'failed'"), 15, "the item to fail")
    listed = Cli(stack.url).run("outbox", "list", "--status", "failed", "--json")
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)
    assert item["status"] == "failed" and item["channel"] == "email" and item["kind"] == "reply"
    assert item["recipient"] == sender and item["attempts"] >= 2 and "relay" in item["last_error"]
    assert "payload" not in item  # the answer text is not printed
    stack.sink.start()
    stack.sink.assert_quiet(1.0)  # given up means given up: no late copy
    assert '"outbox.failed"' in worker.log.read_text()


async def test_a_slow_batch_never_outlives_its_lease(postgres_url: str) -> None:  # noqa: F811
    """Two dispatchers (two processes' worth) on one outbox, sends slower than the lease
    allows for a whole batch: an item whose lease ran out while it waited its turn in one
    process's batch must not be sent by that process after another one has taken it."""
    import asyncio

    from qopi_bot.migrate import upgrade
    from qopi_bot.outbox import Dispatcher
    from qopi_bot.settings import Settings
    from qopi_bot.store import Store

    stores = [Store.from_url(postgres_url) for _ in range(2)]
    await upgrade(stores[0])
    for n in range(6):
        await stores[0].outbox_put("test", "reply", {"n": n}, dedupe_key=f"slow:{n}")
    sent: collections.Counter[int] = collections.Counter()

    async def slow_send(item: Any) -> None:
        await asyncio.sleep(0.4)
        sent[item.id] += 1

    settings = Settings(QOPI_LEASE_SECONDS=1, QOPI_POLL_INTERVAL=0.05)  # type: ignore[call-arg]
    dispatchers = [Dispatcher(s, "test", slow_send, settings) for s in stores]

    async def drain(d: Dispatcher) -> None:
        deadline = time.monotonic() + 15
        while len(sent) < 6 and time.monotonic() < deadline:
            if not await d.run_once():
                await asyncio.sleep(0.05)
    try:
        await asyncio.gather(*(drain(d) for d in dispatchers))
        assert sorted(sent) == sorted(i.id for i in await stores[0].outbox_list(channel="test"))
        assert set(sent.values()) == {1}, f"sent twice: {sent}"
        assert {i.status for i in await stores[0].outbox_list(channel="test")} == {"sent"}
    finally:
        for s in stores:
            await s.close()
