"""Helpers for the IMAP tests: a throwaway Dovecot, a worker pointed at it (in-process or as
`qopi-bot worker`), replies to the SMTP sink, a real SQLite file. Nothing of the project is mocked."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qopi_bot.settings import Settings
from tests.email_support import HELP, ROOT, env_for, procfile_command
from tests.fakes.dovecot import DovecotUnavailable, ThrowawayDovecot, find_dovecot
from tests.fakes.smtp_sink import SmtpSink
from tests.waiting import wait_until


def _dovecot_or_skip() -> None:
    try:
        find_dovecot()
    except DovecotUnavailable as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


@pytest.fixture
def dovecot() -> Iterator[ThrowawayDovecot]:
    _dovecot_or_skip()
    server = ThrowawayDovecot(user=HELP).start()
    try:
        yield server
    finally:
        server.cleanup()


def imap_env(db_path: Path, sink: SmtpSink, server: ThrowawayDovecot, port: int | None = None, **extra: str) -> dict[str, str]:
    env = env_for(db_path, sink)
    env.update({
        "QOPI_IMAP_HOST": "127.0.0.1", "QOPI_IMAP_PORT": str(port or server.port), "QOPI_IMAP_SECURITY": "none",
        "QOPI_IMAP_USER": server.user, "QOPI_IMAP_PASSWORD": server.password,
        # Long enough that only IDLE can explain an answer inside the tests' 10 s deadlines.
        "QOPI_IMAP_POLL_SECONDS": "60",
    })
    env.update(extra)
    return env


def imap_settings(db_path: Path, sink: SmtpSink, server: ThrowawayDovecot, **extra: str) -> Settings:
    return Settings(**imap_env(db_path, sink, server, **extra))  # type: ignore[arg-type]


def inbox_statuses(db_path: Path) -> dict[str, str]:
    """external_id -> status of the stored mail, read straight from the SQLite file."""
    with sqlite3.connect(db_path, timeout=30) as db:
        try:
            rows = db.execute("SELECT external_id, status FROM inbox WHERE source = 'email'").fetchall()
        except sqlite3.OperationalError:  # the worker has not created the schema yet
            return {}
    return {r[0]: r[1] for r in rows}


class ImapWorkerProcess:
    """`qopi-bot worker` as the Procfile runs it, reading the mailbox over IMAP."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        full = dict(os.environ)
        full.update(env)
        full["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full.get('PATH', '')}"
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self._start_offset = log_path.stat().st_size
        self.proc = subprocess.Popen(procfile_command(), cwd=ROOT, env=full, stdout=self._log, stderr=self._log,
                                     start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[self._start_offset:]

    def wait_watching(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}: {self.log()[-2000:]}")
            return "email.imap_watching" in self.log()

        wait_until(ready, timeout, "the worker to watch the mailbox")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: no cleanup of any kind
        self.proc.wait(timeout=10)
        self._log.close()

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=5)
        self._log.close()
        return code


def watching(db_path: Path) -> bool:
    """True once a worker has met the mailbox (recorded its history mark)."""
    with sqlite3.connect(db_path, timeout=30) as db:
        try:
            return db.execute("SELECT 1 FROM inbox WHERE source = 'imap-baseline'").fetchone() is not None
        except sqlite3.OperationalError:
            return False
