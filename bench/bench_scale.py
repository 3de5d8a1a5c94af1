"""Scale-out benchmark (run on demand: `python bench/bench_scale.py [--events N] [--mails N]`).

Answered Slack events/s and email replies/s, measured in the same run, with the processes
as deployed (`qopi-bot serve` / `qopi-bot worker`, JSON logs at their usual level):
  - SQLite, one process            (the embedded default: the baseline)
  - PostgreSQL, one process
  - PostgreSQL, two processes      (same database; the load is spread over both)
and printed as ratios: PostgreSQL/SQLite on one process, two/one processes on PostgreSQL.
Everything is local: a throwaway PostgreSQL (tests/fakes/postgres.py), the Slack stand-in
(FakeSlackAPI) and an SMTP sink as the relay, all on 127.0.0.1. Each configuration gets a
fresh database, a warm-up, then `--rounds` measured runs (median shown). Bounded loads only.

Read the two-process figures with the machine in mind: the load generator, the fake Slack,
the SMTP sink, PostgreSQL and the bot processes all share its cores (`os.cpu_count()` is
printed), so a second process can only help as far as a core is free."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import aiosmtplib  # noqa: E402

from tests.fakes import slack_signing as ss  # noqa: E402
from tests.fakes.postgres import ThrowawayPostgres  # noqa: E402
from tests.fakes.slack_api import FakeSlackAPI  # noqa: E402
from tests.fakes.smtp_sink import SmtpSink, find_free_port  # noqa: E402
from workload import HELP, question, question_mail  # noqa: E402,F401

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
SLACK_CONCURRENCY = 20
SMTP_CONCURRENCY = 8


# ---------------------------------------------------------------------------- processes
def _env(database_url: str, fake: FakeSlackAPI, sink: SmtpSink, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QOPI_", "DATABASE_URL", "PORT"))}
    env.update(DATABASE_URL=database_url, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake.base_url,
               QOPI_SMTP_RELAY=sink.address, QOPI_HELP_ADDRESS=HELP, QOPI_REPLY_CAP_PER_HOUR="1000000",
               QOPI_LOG_FORMAT="json", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.update(extra)
    return env


class Processes:
    """`count` processes of one kind on one database; stopped on exit."""

    def __init__(self, kind: str, count: int, env: dict[str, str], logs: Path) -> None:
        self.kind, self.ports, self.procs = kind, [find_free_port() for _ in range(count)], []
        for i, port in enumerate(self.ports):
            own = {"PORT": str(port)} if kind == "web" else {"QOPI_SMTP_LISTEN": f"127.0.0.1:{port}"}
            log = (logs / f"{kind}{i}.log").open("ab")
            command = ["qopi-bot", "serve" if kind == "web" else "worker"]
            self.procs.append(subprocess.Popen(command, cwd=ROOT, env={**env, **own}, stdout=log, stderr=log))

    def __enter__(self) -> Processes:
        deadline = time.monotonic() + 60
        for proc, port in zip(self.procs, self.ports, strict=True):
            while not self._ready(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.kind} on port {port} did not start")
                time.sleep(0.05)
        return self

    def _ready(self, port: int) -> bool:
        try:
            if self.kind == "web":
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                    return bool(json.loads(resp.read()).get("database"))
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


# ---------------------------------------------------------------------------- load
async def slack_run(ports: list[int], fake: FakeSlackAPI, events: int, tag: str) -> float:
    """Send `events` signed mentions spread over the web processes; answered events/s."""
    fake.clear()
    urls = [f"http://127.0.0.1:{p}/slack/events" for p in ports]
    queue = [(urls[i % len(urls)], ss.encode_json(ss.event_callback(ss.app_mention(
        question(i), user=f"U{i % 97}", channel=f"C{tag}{i % 40}")))) for i in range(events)]
    queue.reverse()
    connector = aiohttp.TCPConnector(limit=SLACK_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def client() -> None:
            while queue:  # bounded: a finite list
                url, body = queue.pop()
                status, _ = await ss.post_signed_async(url, body, SECRET, content_type="application/json", session=session)
                assert status == 200, f"HTTP {status}"

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(SLACK_CONCURRENCY)))
        await fake.wait_for_async("chat.postMessage", events, timeout=300, predicate=lambda c: c.ok)
        elapsed = time.perf_counter() - started
    await asyncio.sleep(0.5)
    assert len(fake.posts()) == events, f"{len(fake.posts())} posts for {events} events"
    return events / elapsed




async def email_run(ports: list[int], sink: SmtpSink, mails: int, tag: str) -> float:
    """Send `mails` messages spread over the workers; replies/s (until every reply arrived)."""
    queue = list(range(mails))
    before = len(sink)

    async def client() -> None:
        while queue:  # bounded: a finite list
            n = queue.pop()
            sender, _msgid, raw = question_mail(n, tag)
            await aiosmtplib.send(raw, sender=sender, recipients=[HELP], hostname="127.0.0.1",
                                  port=ports[n % len(ports)], start_tls=False, timeout=30)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(SMTP_CONCURRENCY)))
    await sink.wait_for_async(before + mails, timeout=300)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.5)
    assert len(sink) == before + mails, f"{len(sink) - before} replies for {mails} mails"
    return mails / elapsed


# ---------------------------------------------------------------------------- the run
def measure(kind: str, count: int, database_url: str, fake: FakeSlackAPI, sink: SmtpSink, load: int, rounds: int,
            logs: Path) -> float:
    with Processes(kind, count, _env(database_url, fake, sink), logs) as procs:
        run = slack_run if kind == "web" else email_run
        target = fake if kind == "web" else sink
        asyncio.run(run(procs.ports, target, max(20, load // 10), "warm"))  # type: ignore[arg-type]
        rates = [asyncio.run(run(procs.ports, target, load, f"r{r}")) for r in range(rounds)]  # type: ignore[arg-type]
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400, help="Slack events per measured run")
    parser.add_argument("--mails", type=int, default=300, help="emails per measured run")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    events, mails, rounds = max(20, min(args.events, 5_000)), max(20, min(args.mails, 5_000)), max(1, min(args.rounds, 5))

    pg = ThrowawayPostgres()
    fake, sink = FakeSlackAPI(valid_tokens=[TOKEN]), SmtpSink()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results: dict[tuple[str, str, int], float] = {}
    try:
        pg.start()
        fake.start()
        sink.start()
        print(f"scale benchmark: {events} Slack events / {mails} mails per run, {rounds} runs (median), "
              f"{SLACK_CONCURRENCY} / {SMTP_CONCURRENCY} concurrent senders, {os.cpu_count()} cores, loopback")
        for kind, load in (("web", events), ("worker", mails)):
            for db, count in (("sqlite", 1), ("postgres", 1), ("postgres", 2)):
                name = f"{kind}_{db}_{count}"
                if db == "sqlite":
                    url = f"sqlite+aiosqlite:///{tmp / name}.sqlite3"
                else:
                    url = pg.create_database(name)
                    done = subprocess.run([str(Path(sys.executable).parent / "qopi-bot"), "db", "upgrade"],
                                          env=_env(url, fake, sink), capture_output=True, text=True, timeout=60)
                    assert done.returncode == 0, done.stderr
                (tmp / name).mkdir()
                results[(kind, db, count)] = rate = measure(kind, count, url, fake, sink, load, rounds, tmp / name)
                unit = "answered events/s" if kind == "web" else "replies/s"
                print(f"  {'slack' if kind == 'web' else 'email':5} {db:8} x{count}: {rate:7.1f} {unit}", flush=True)
    finally:
        sink.stop()
        fake.stop()
        pg.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    for kind, label in (("web", "slack"), ("worker", "email")):
        one_sqlite, one_pg, two_pg = (results[(kind, "sqlite", 1)], results[(kind, "postgres", 1)],
                                      results[(kind, "postgres", 2)])
        print(f"  {label}: PostgreSQL/SQLite (1 process) {one_pg / one_sqlite:.2f}x; "
              f"2/1 processes on PostgreSQL {two_pg / one_pg:.2f}x")


if __name__ == "__main__":
    main()
