"""Shared helpers for the email tests: a real worker on loopback, the SMTP sink as its
relay, a real SQLite file. Nothing of the project is mocked."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from qopi_bot_handlers.email.worker import EmailWorker, start_worker
from qopi_bot.settings import Settings
from qopi_bot.store import Store
from tests.fakes.smtp_sink import ReceivedMessage, SmtpSink, find_free_port, send_eml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "email"
HELP = "help@qopi-bot.test"
STAFF = "qcp-staff@qopi-bot.test"


def manifest() -> list[dict[str, Any]]:
    return yaml.safe_load((CORPUS / "manifest.yaml").read_text(encoding="utf-8"))


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ")).strip().lower()


def env_for(db_path: Path, sink: SmtpSink, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "QOPI_SMTP_LISTEN": "127.0.0.1:0",
        "QOPI_SMTP_RELAY": sink.address,
        "QOPI_HELP_ADDRESS": HELP,
        "QOPI_STAFF_EMAIL": STAFF,
        "QOPI_POLL_INTERVAL": "0.05",
        "QOPI_OUTBOX_MAX_BACKOFF": "0.3",
        "QOPI_LEASE_SECONDS": "2",
        "QOPI_LOG_FORMAT": "json",
    }
    env.update(extra)
    return env


def settings_for(db_path: Path, sink: SmtpSink, **extra: str) -> Settings:
    return Settings(**env_for(db_path, sink, **extra))  # type: ignore[arg-type]


@asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[EmailWorker]:
    worker = await start_worker(settings)
    try:
        yield worker
    finally:
        await worker.stop()


async def send(worker: EmailWorker, raw: bytes, mail_from: str, rcpt: str = HELP) -> int:
    """Deliver like an MTA (smtplib, which also handles MAIL FROM:<>); returns the SMTP code.
    A refusal raises smtplib.SMTPResponseException (`.smtp_code`)."""
    host, port = worker.address
    await asyncio.to_thread(send_eml, host, port, raw, mail_from, rcpt, 10.0)
    return 250


async def settle(store: Store, timeout: float = 10.0) -> None:
    """Wait until every stored message is handled and every email outbox item is sent (or
    given up): nothing left for the worker to do."""
    deadline = time.monotonic() + timeout
    while True:
        counts = await store.inbox_counts()
        busy_in = counts.get("pending", 0) + counts.get("leased", 0)
        busy_out = [i for i in await store.outbox_list(channel="email") if i.status in ("pending", "leased")]
        if not busy_in and not busy_out:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker still busy: inbox {counts}, outbox {[(i.kind, i.status) for i in busy_out]}")
        await asyncio.sleep(0.02)


async def practice_messages(store: Store, after_id: int = 0) -> list[tuple[int, str, str]]:
    """(id, conversation_key, text) of practice messages stored after `after_id`."""
    from qopi_bot.store import messages

    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(messages.c.id, messages.c.conversation_key, messages.c.text)
                                   .where(messages.c.id > after_id, messages.c.role == "practice")
                                   .order_by(messages.c.id))).all()
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


async def last_message_id(store: Store) -> int:
    from sqlalchemy import func

    from qopi_bot.store import messages

    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.coalesce(func.max(messages.c.id), 0)))).scalar_one())


async def inbox_rows(store: Store) -> list[dict[str, Any]]:
    from qopi_bot.store import inbox

    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(inbox).order_by(inbox.c.id))).mappings().all()
    return [dict(r) for r in rows]


def question_mail(text: str, subject: str = "Score validity", sender: str = "dana.whitfield@riverbend-onc.example.org",
                  in_reply_to: str | None = None, references: list[str] | None = None,
                  message_id: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Dana Whitfield <{sender}>"
    msg["To"] = HELP
    msg["Subject"] = subject
    msg["Date"] = "Mon, 2 Mar 2026 08:41:17 -0600"
    msg["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2])
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    msg.set_content(text)
    return msg


def parts_of(m: ReceivedMessage) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in m.message.walk():
        if not part.is_multipart():
            out[part.get_content_type()] = part.get_content()
    return out


def reply_text(m: ReceivedMessage) -> str:
    return parts_of(m).get("text/plain", "")


# ---------------------------------------------------------------------------- subprocess
def procfile_command(kind: str = "worker") -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            return shlex.split(command)
    raise AssertionError(f"no {kind}: line in Procfile")


class WorkerProcess:
    """`qopi-bot worker` as the Procfile runs it, on a port of its own."""

    def __init__(self, env: dict[str, str], stderr_path: Path) -> None:
        self.port = find_free_port()
        full = dict(os.environ)
        full.update(env)
        full["QOPI_SMTP_LISTEN"] = f"127.0.0.1:{self.port}"
        full["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full.get('PATH', '')}"
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "ab")
        self.proc = subprocess.Popen(procfile_command(), cwd=ROOT, env=full, stdout=self._stderr,
                                     stderr=self._stderr, start_new_session=True)

    def wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}: {self.stderr_path.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("worker did not start listening")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._stderr.close()

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=5)
        self._stderr.close()
        return code
