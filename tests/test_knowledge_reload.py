"""A running web process applies a changed knowledge folder without a restart, refuses one
that fails the check (keeping the knowledge in force), and each answer records the version
it was given under. Slack over signed HTTP against the stand-in; a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_harness import ROOT, process_env, running, settings_from, slack_env
from tests.test_knowledge_drives import copy_knowledge, set_threshold

QUESTION = "What score do we need to pass?"


async def _ask(stand, fake: FakeSlackAPI, n: int) -> str:  # type: ignore[no-untyped-def]
    channel = f"DASK{n}"
    await stand.event(ss.dm_message(QUESTION, user=f"UASK{n}", channel=channel))
    (post,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10, predicate=lambda c: c.params["channel"] == channel)
    return str(post.params["text"])


async def _until_answer_says(stand, fake: FakeSlackAPI, start: int, needle: str, timeout: float = 30.0) -> int:  # type: ignore[no-untyped-def]
    """Ask again until an answer says `needle`; the process must not be restarted meanwhile."""
    deadline, n = time.monotonic() + timeout, start
    while True:
        n += 1
        if needle in await _ask(stand, fake, n):
            return n
        assert time.monotonic() < deadline, f"no answer said {needle!r} within {timeout} s"
        await asyncio.sleep(0.2)


async def test_changed_folder_applies_and_a_broken_one_is_refused(tmp_path: Path, fake: FakeSlackAPI) -> None:
    import subprocess
    import sys

    folder = copy_knowledge(tmp_path)
    env = slack_env(tmp_path, fake, QOPI_KNOWLEDGE_DIR=str(folder), QOPI_KNOWLEDGE_POLL_SECONDS="0.1")
    async with running(settings_from(env), fake) as stand:
        first = await _ask(stand, fake, 0)
        assert "75%" in first
        v1 = stand.service.live.current.version

        set_threshold(folder, 80)
        n = await _until_answer_says(stand, fake, 0, "80%")
        v2 = stand.service.live.current.version
        assert v2 != v1 and stand.service.live.last_error is None

        # A broken folder (bad YAML) is refused; answers keep the last good knowledge.
        (folder / "contacts.yaml").write_text("email: [unclosed\n", encoding="utf-8")
        deadline = time.monotonic() + 30
        while stand.service.live.last_error is None:
            assert time.monotonic() < deadline, "the broken folder was never looked at"
            await asyncio.sleep(0.1)
        assert "contacts.yaml" in stand.service.live.last_error
        assert "80%" in await _ask(stand, fake, n + 1) and stand.service.live.current.version == v2

    # Each answer recorded the knowledge version it was given under (and the report needs
    # only the database: it works while the folder is still broken).
    done = subprocess.run([sys.executable, "-m", "qopi_bot.cli", "report", "--json"], cwd=ROOT,
                          env=process_env(env), capture_output=True, text=True, timeout=60)
    versions = json.loads(done.stdout)["knowledge_versions"]
    assert set(versions) == {v1, v2} and versions[v1] >= 1 and versions[v2] >= 2


from tests.slack_harness import fake  # noqa: E402,F401  (fixture)


async def test_the_email_worker_applies_a_changed_folder(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    from tests.email_support import question_mail, reply_text, running_worker, send, settings_for

    folder = copy_knowledge(tmp_path)
    settings = settings_for(tmp_path / "mail.sqlite3", smtp_sink, QOPI_KNOWLEDGE_DIR=str(folder),
                            QOPI_KNOWLEDGE_POLL_SECONDS="0.1")
    async with running_worker(settings) as worker:
        await send(worker, question_mail(QUESTION).as_bytes(), "dana@riverbend.example.org")
        (first,) = await smtp_sink.wait_for_async(1, timeout=10)
        assert "75%" in reply_text(first)

        set_threshold(folder, 80)
        deadline, sent = time.monotonic() + 30, 1
        while True:
            await send(worker, question_mail(QUESTION).as_bytes(), "dana@riverbend.example.org")
            sent += 1
            latest = (await smtp_sink.wait_for_async(sent, timeout=10))[-1]
            if "80%" in reply_text(latest):
                break
            assert time.monotonic() < deadline, "the worker never applied the changed folder"
            await asyncio.sleep(0.2)
        assert worker.live.current.version != "" and worker.live.last_error is None


from tests.fakes.smtp_sink import SmtpSink, smtp_sink  # noqa: E402,F401  (fixture)
