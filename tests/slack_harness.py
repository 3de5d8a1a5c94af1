"""The stand the Slack tests share: our real aiohttp app on a free loopback port, the
FakeSlackAPI as Slack's Web API, a real SQLite file, and requests signed as Slack signs
them. Nothing of the project is mocked; tests look only at what reached the fake Slack
and at the database."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from qopi_bot_handlers.slack.app import SERVICE, create_web_app
from qopi_bot_handlers.slack.service import SlackService
from qopi_bot.settings import Settings
from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI

SECRET = "slack-test-signing-secret"
STAFF = ("USTAFF1", "USTAFF2")
STAFF_CHANNEL = "CSTAFF"
ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def slack_env(tmp_path: Path, fake: FakeSlackAPI, **extra: str) -> dict[str, str]:
    """The environment a Slack process gets (contract section 3), as strings."""
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'slack.sqlite3'}",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.base_url,
        "QOPI_STAFF_CHANNEL": STAFF_CHANNEL,
        "QOPI_STAFF_USERS": ",".join(STAFF),
        "QOPI_POLL_INTERVAL": "0.05",
        "QOPI_OUTBOX_MAX_BACKOFF": "0.3",
        "QOPI_LOG_FORMAT": "json",
    }
    env.update(extra)
    return env


def settings_from(env: dict[str, str]) -> Settings:
    return Settings(**env)  # type: ignore[arg-type]  (aliases are the environment names)


def process_env(env: dict[str, str]) -> dict[str, str]:
    """For subprocesses: our settings on top of a clean copy of this environment."""
    merged = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "QOPI_", "DATABASE_URL", "PORT"))}
    merged.update(env)
    merged["PATH"] = f"{VENV_BIN}{os.pathsep}{merged.get('PATH', '')}"
    return merged


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stand:
    url: str
    service: SlackService
    fake: FakeSlackAPI
    http: aiohttp.ClientSession

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    async def send(self, body: Any, **kw: Any) -> tuple[int, str]:
        return await ss.post_signed_async(self.events_url, body, SECRET, session=self.http, **kw)

    async def event(self, event: dict[str, Any], event_id: str | None = None, **kw: Any) -> tuple[int, str, str]:
        envelope = ss.event_callback(event, event_id=event_id)
        status, text = await self.send(envelope, **kw)
        return status, text, envelope["event_id"]

    async def healthz(self) -> tuple[int, dict[str, Any]]:
        async with self.http.get(self.url + "/healthz") as resp:
            return resp.status, await resp.json()


async def wait_ready(service: SlackService, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not service.ready:
        assert time.monotonic() < deadline, "the Slack service did not become ready"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running(settings: Settings, fake: FakeSlackAPI, *, api_timeout: float = 3.0,
                  ready: bool = True, **kw: Any) -> AsyncIterator[Stand]:
    app: web.Application = create_web_app(settings, api_timeout=api_timeout, **kw)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
    try:
        if ready:
            await wait_ready(app[SERVICE])
        yield Stand(url=f"http://127.0.0.1:{port}", service=app[SERVICE], fake=fake, http=http)
    finally:
        await http.close()
        await runner.cleanup()


async def settle(seconds: float = 0.4) -> None:
    """Give the app time to do something it must NOT do (a second post, a relay)."""
    await asyncio.sleep(seconds)


def posts_to(fake: FakeSlackAPI, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
    return [p for p in fake.posts() if p.get("channel") == channel and (thread_ts is None or p.get("thread_ts") == thread_ts)]


def block_text(params: dict[str, Any]) -> str:
    """Every piece of text in a message's blocks, joined: what a reader sees."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(params.get("blocks") or [])
    return "\n".join(out)


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def fake() -> Iterator[FakeSlackAPI]:
    api = FakeSlackAPI()
    api.start()
    yield api
    api.stop()


@pytest.fixture
def env(tmp_path: Path, fake: FakeSlackAPI) -> dict[str, str]:
    return slack_env(tmp_path, fake)


@pytest.fixture
async def stand(env: dict[str, str], fake: FakeSlackAPI) -> AsyncIterator[Stand]:
    async with running(settings_from(env), fake) as s:
        yield s
