"""The web process as deployed: the Procfile's `web:` command, restarts, Socket Mode wiring."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from qopi_bot_handlers.slack.app import SERVICE, create_web_app
from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_harness import (  # noqa: F401  (fixtures)
    ROOT, SECRET, env, fake, free_port, process_env, running, settings_from, settle,
)

pytestmark = pytest.mark.slow


def procfile_web_command() -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return shlex.split(line.partition(":")[2])
    raise AssertionError("Procfile has no web: line")


class WebProcess:
    """`qopi-bot serve` as the platform runs it, with PORT set."""

    def __init__(self, env: dict[str, str], log: Path, extra_args: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("ab")
        self.proc = subprocess.Popen(procfile_web_command() + list(extra_args or []), cwd=ROOT, env=process_env({**env, "PORT": str(self.port)}),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, f"qopi-bot serve exited: {log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    if json.loads(resp.read())["database"]:
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "qopi-bot serve did not become healthy"
            time.sleep(0.1)

    def post(self, body: Any, **kw: Any) -> int:
        return ss.post_signed(self.url + "/slack/events", body, SECRET, timeout=10, **kw)[0]

    def stop(self) -> int:
        self.proc.terminate()  # SIGTERM, as the platform does on a deploy
        try:
            return self.proc.wait(15)
        finally:
            self.log.close()


def test_procfile_web_process_answers_and_survives_a_restart(env: dict[str, str], fake: FakeSlackAPI, tmp_path: Path) -> None:
    assert procfile_web_command() == ["qopi-bot", "serve"]
    web = WebProcess(env, tmp_path / "web.log")
    try:
        mention = ss.event_callback(ss.app_mention("Is 80% enough to pass?", channel="C1"))
        started = time.monotonic()
        assert web.post(mention) == 200
        assert time.monotonic() - started < 3.0
        (call,) = fake.wait_for("chat.postMessage", 1, timeout=15)
        assert call.params["thread_ts"] == mention["event"]["ts"] and "ELIG-SCORE" in call.params["text"]
        assert web.post(b"{broken", content_type="application/json") == 400
    finally:
        assert web.stop() == 0  # a clean shutdown on SIGTERM

    web = WebProcess(env, tmp_path / "web.log")  # the next process, same database
    try:
        assert web.post(mention, retry_num=1, retry_reason="http_timeout") == 200
        assert web.post(ss.event_callback(ss.dm_message("hello", channel="D2", user="U2"))) == 200
        fake.wait_for("chat.postMessage", 2, timeout=15)
        time.sleep(0.5)
        assert [p["channel"] for p in fake.posts()] == ["C1", "D2"]
    finally:
        web.stop()
    logged = (tmp_path / "web.log").read_text()
    assert "Is 80% enough" not in logged and "hello" not in logged  # ids and outcomes, never bodies


def test_socket_mode_without_app_token_fails_clearly(env: dict[str, str], tmp_path: Path) -> None:
    out = subprocess.run(procfile_web_command() + ["--socket-mode"], cwd=ROOT, capture_output=True, text=True,
                         env=process_env({**env, "PORT": str(free_port())}), timeout=60)
    assert out.returncode != 0
    assert "SLACK_APP_TOKEN" in out.stderr and "xapp-" in out.stderr


class RecordingSocket:
    """Stands in for Slack's end of the WebSocket: records the acks we send."""

    def __init__(self) -> None:
        self.acks: list[SocketModeResponse] = []

    async def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.acks.append(response)


async def test_socket_mode_builds_the_handler_stores_then_acks(env: dict[str, str], fake: FakeSlackAPI) -> None:
    """A real Socket Mode connection needs Slack; offline we check the wiring: the handler
    asks apps.connections.open with the app token, and envelopes are stored, acked once,
    processed by the same inbox processor and answered once."""
    fake.set_response("apps.connections.open", {"ok": True, "url": f"ws://127.0.0.1:{free_port()}/socket"})
    settings = settings_from({**env, "SLACK_APP_TOKEN": "xapp-1-test"})
    async with running(settings, fake, socket_mode=True) as stand:
        (opened,) = (await fake.wait_for_async("apps.connections.open", 1, timeout=10))[:1]
        assert opened.token == "xapp-1-test"
        intake = stand.service._socket
        assert intake is not None
        envelope = ss.event_callback(ss.app_mention("Is 80% enough to pass?", channel="C9"))
        socket = RecordingSocket()
        await intake.handle(socket, SocketModeRequest(type="events_api", envelope_id="env-1", payload=envelope))  # type: ignore[arg-type]
        await intake.handle(socket, SocketModeRequest(type="events_api", envelope_id="env-2", payload=envelope,  # type: ignore[arg-type]
                                                      retry_attempt=1, retry_reason="timeout"))
        command = {"command": "/qopi", "text": "hello", "user_id": "U9", "channel_id": "C9", "team_id": "T1",
                   "trigger_id": "t-9", "response_url": fake.response_url("socket")}
        await intake.handle(socket, SocketModeRequest(type="slash_commands", envelope_id="env-3", payload=command))  # type: ignore[arg-type]
        assert [a.envelope_id for a in socket.acks] == ["env-1", "env-2", "env-3"]
        (call,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10)
        assert call.params["channel"] == "C9" and call.params["thread_ts"] == envelope["event"]["ts"]
        await fake.wait_for_async("response_url", 1, timeout=10)
        await settle()
    assert len(fake.posts()) == 1


def test_create_web_app_is_an_aiohttp_application(env: dict[str, str]) -> None:
    from aiohttp import web

    app = create_web_app(settings_from(env))
    assert isinstance(app, web.Application) and app[SERVICE] is not None
    assert {r.resource.canonical for r in app.router.routes() if r.resource} >= {"/slack/events", "/healthz"}
