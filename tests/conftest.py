"""Shared fixtures: the knowledge base on the test calendar, and a CLI runner that talks to
the installed `qopi-bot` script as a separate process, the way users and scripts do."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

# In CI the property and fuzz tests replay the same generated inputs every run (10,000+ of
# them), so a red build always means a change broke something; locally they explore afresh.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

from qopi_bot.core.kb import Knowledge
from qopi_bot.knowledge import load_knowledge

DATA = Path(__file__).parent / "data"
ROUNDS_FIXTURE = DATA / "rounds_fixture.yaml"
QOPI_BOT = str(Path(sys.executable).parent / "qopi-bot")


@pytest.fixture(scope="session")
def kb() -> Knowledge:
    return load_knowledge(rounds_file=ROUNDS_FIXTURE)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'qopi.sqlite3'}"


class Cli:
    def __init__(self, db_url: str) -> None:
        self.env = {**os.environ, "DATABASE_URL": db_url}
        for key in ("QOPI_STAFF_CHANNEL", "QOPI_STAFF_EMAIL", "SLACK_BOT_TOKEN", "QOPI_ROUNDS_FILE"):
            self.env.pop(key, None)

    def run(self, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([QOPI_BOT, *args], input=stdin, capture_output=True, text=True, env=self.env,
                              timeout=timeout)

    def ask_json(self, question: str, *args: str) -> dict[str, Any]:
        done = self.run("ask", "--json", "--rounds", str(ROUNDS_FIXTURE), *args, question)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def stream(self, lines: list[Any], *args: str) -> list[dict[str, Any]]:
        feed = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
        done = self.run("ask", "--json", "--rounds", str(ROUNDS_FIXTURE), *args, stdin=feed)
        assert done.returncode == 0, done.stderr
        return [json.loads(x) for x in done.stdout.splitlines() if x.strip()]


@pytest.fixture
def cli(db_url: str) -> Cli:
    return Cli(db_url)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


from tests.fakes.pg_fixture import postgres_server, postgres_url  # noqa: E402,F401  (real PostgreSQL fixtures)
