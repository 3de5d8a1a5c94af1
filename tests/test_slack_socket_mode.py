"""Socket Mode as Slack documents it (issue 14, contract section 8): no signing secret is
needed; the process starts, keeps trying while Slack is unreachable, and its HTTP events
route processes nothing -- never a request checked against an empty key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_harness import SECRET, env, fake  # noqa: F401  (fixtures)
from tests.test_slack_process import WebProcess
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def _inbox_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM inbox").fetchone()[0])


@pytest.mark.parametrize("flag", [False, True], ids=["app_token_without_secret", "socket_mode_flag"])
def test_socket_mode_starts_without_a_secret_retries_and_refuses_http(env: dict[str, str], fake: FakeSlackAPI,
                                                                      tmp_path: Path, flag: bool) -> None:
    # Slack unreachable: apps.connections.open keeps failing.
    fake.fail_next("apps.connections.open", 503, times=10_000)
    socket_env = {**env, "SLACK_APP_TOKEN": "xapp-1-test", "SLACK_SIGNING_SECRET": ""}
    web = WebProcess(socket_env, tmp_path / "web.log", extra_args=["--socket-mode"] if flag else [])
    try:
        # It started (WebProcess waited for /healthz) and keeps trying to reach Slack.
        calls = fake.wait_for("apps.connections.open", 2, timeout=20)
        assert all(c.token == "xapp-1-test" for c in calls)
        envelope = ss.event_callback(ss.app_mention("Is 80% enough to pass?", channel="C9"))
        # Signed with the empty key (what a verifier built from "" would accept), with a
        # made-up key, and unsigned: all refused, nothing stored, nothing answered.
        assert ss.post_signed(web.url + "/slack/events", envelope, "", timeout=10)[0] == 401
        assert ss.post_signed(web.url + "/slack/events", envelope, SECRET, timeout=10)[0] == 401
        assert ss.post_signed(web.url + "/slack/events", ss.url_verification(), "", timeout=10)[0] == 401
        assert _inbox_rows(tmp_path / "slack.sqlite3") == 0
        assert fake.calls_for("chat.postMessage") == []
        assert web.proc.poll() is None
        wait_until(lambda: "slack.http_refused" in (tmp_path / "web.log").read_text(), 10, "the refusal logged")
    finally:
        assert web.stop() == 0
    logged = (tmp_path / "web.log").read_text()
    assert "signing_secret must not be empty" not in logged
