"""Email channel benchmark (run on demand: `python bench/bench_email.py [--messages N]`).

Measures "message received -> reply delivered" for
  ours: `qopi-bot worker` (SMTP in, durable inbox, dialogue, durable outbox, SMTP out), and
  bare: a bare aiosmtpd server whose handler forwards each message straight to the relay
        with aiosmtplib (no storage, no dialogue, no retries),
both as separate processes on loopback, measured in the same run against the same SMTP sink
(the relay), with the same load: CONCURRENCY clients each sending messages one after the
other. Prints messages/s and p50/p99 latency for each (under that load, and one message at a time,
i.e. without queueing), and the ratios ours/bare.
Target (issue 6): ours >= 0.8x the bare relay's throughput. Bounded loops only."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiosmtplib  # noqa: E402

from tests.fakes.smtp_sink import SmtpSink, find_free_port  # noqa: E402
from workload import HELP, MIX, question_mail  # noqa: E402,F401
from proc_cpu import cpu_seconds  # noqa: E402





# ---------------------------------------------------------------------------- the bare relay
def serve_bare(port: int, relay: str) -> None:
    from aiosmtpd.smtp import SMTP

    host, _, relay_port = relay.rpartition(":")

    class Forward:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            await aiosmtplib.send(envelope.original_content, sender=HELP, recipients=[envelope.mail_from],
                                  hostname=host, port=int(relay_port), start_tls=False, timeout=30)
            return "250 2.0.0 forwarded"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Forward(), hostname="bare.test"), "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# ---------------------------------------------------------------------------- load
def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("server did not start")


async def _load(port: int, sink: SmtpSink, first: int, count: int, concurrency: int) -> tuple[float, list[float]]:
    sent_at: dict[str, float] = {}
    queue = list(range(first, first + count))

    async def client() -> None:
        while queue:  # bounded: every client takes from a finite list
            n = queue.pop()
            sender, msgid, raw = question_mail(n)
            sent_at[msgid] = time.time()
            await aiosmtplib.send(raw, sender=sender, recipients=[HELP], hostname="127.0.0.1", port=port,
                                  start_tls=False, timeout=30)

    before = len(sink)
    started = time.time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    got = await sink.wait_for_async(before + count, timeout=120)
    delivered = got[before:before + count]
    latencies = []
    for m in delivered:
        key = (m.message["In-Reply-To"] or m.message["Message-ID"] or "").strip()
        if key in sent_at:
            latencies.append(m.received_at - sent_at[key])
    elapsed = max(m.received_at for m in delivered) - started
    return count / elapsed, latencies


async def _one_at_a_time(port: int, sink: SmtpSink, first: int, count: int) -> list[float]:
    """Latency without queueing: the next message is sent only once the previous reply arrived."""
    latencies = []
    for n in range(first, first + count):
        _rate, lat = await _load(port, sink, n, 1, 1)
        latencies += lat
    return latencies


def _p(latencies: list[float], q: int) -> float:
    return statistics.quantiles(latencies, n=100)[q - 1] * 1000 if q != 50 else statistics.median(latencies) * 1000


def _measure(name: str, cmd: list[str], env: dict[str, str], port: int, sink: SmtpSink, messages: int,
             concurrency: int, offset: int) -> tuple[float, float, float, float, float, float]:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        asyncio.run(_load(port, sink, offset, min(30, messages), concurrency))  # warm-up
        cpu_before = cpu_seconds(proc.pid)
        rate, loaded = asyncio.run(_load(port, sink, offset + 1000, messages, concurrency))
        cpu_ms = (cpu_seconds(proc.pid) - cpu_before) / messages * 1000
        idle = asyncio.run(_one_at_a_time(port, sink, offset + 5000, 60))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    figures = (rate, _p(loaded, 50), _p(loaded, 99), _p(idle, 50), _p(idle, 99), cpu_ms)
    print(f"  {name:5s} {rate:7.1f} msg/s | under load p50 {figures[1]:7.1f} ms p99 {figures[2]:7.1f} ms "
          f"| one at a time p50 {figures[3]:6.1f} ms p99 {figures[4]:6.1f} ms | CPU {cpu_ms:.2f} ms/msg")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", default="", help="migrated database for ours (default: a fresh SQLite file)")
    parser.add_argument("--serve-bare", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--relay", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare, args.relay)
        return

    sink = SmtpSink().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"email benchmark: {args.messages} messages, {args.concurrency} concurrent senders, loopback, "
                  f"{os.cpu_count()} cores, {MIX} question mix, ours on {(args.database_url or 'sqlite').split(':')[0]}")
            port = find_free_port()
            env = dict(os.environ, DATABASE_URL=args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.sqlite3",
                       QOPI_SMTP_LISTEN=f"127.0.0.1:{port}", QOPI_SMTP_RELAY=sink.address, QOPI_HELP_ADDRESS=HELP,
                       QOPI_REPLY_CAP_PER_HOUR="100000", QOPI_LOG_FORMAT="json",
                       PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
            ours = _measure("ours", ["qopi-bot", "worker"], env, port, sink, args.messages, args.concurrency, 0)
            bare_port = find_free_port()
            bare = _measure("bare", [sys.executable, __file__, "--serve-bare", str(bare_port), "--relay", sink.address],
                            dict(os.environ), bare_port, sink, args.messages, args.concurrency, 100_000)
    finally:
        sink.stop()
    print(f"  targets (issue 15): throughput >= 0.8x bare: {'met' if ours[0] >= 0.8 * bare[0] else 'NOT met'}; "
          f"p99 under load < 1 s: {'met' if ours[2] < 1000 else 'NOT met'}")
    print(f"  ratio ours/bare: throughput {ours[0] / bare[0]:.2f}x (target >= 0.8x); latency under load "
          f"p50 {ours[1] / bare[1]:.1f}x p99 {ours[2] / bare[2]:.1f}x; one at a time p50 {ours[3] / bare[3]:.1f}x "
          f"p99 {ours[4] / bare[4]:.1f}x; CPU per message {ours[5] / bare[5]:.2f}x")


if __name__ == "__main__":
    main()
