"""The console over plain HTTP (no browser): sign-in links expire and work once, sessions are
needed for every page, and the CSV export cannot carry a spreadsheet formula from a practice."""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_harness import ROOT, STAFF, env, fake, process_env, stand, Stand  # noqa: F401  (fixtures)


async def _link(env: dict[str, str], url: str) -> str:
    # In a thread: the web process shares this event loop and must keep running meanwhile.
    return await asyncio.to_thread(_link_sync, env, url)


def _link_sync(env: dict[str, str], url: str) -> str:
    done = subprocess.run([sys.executable, "-m", "qopi_bot.cli", "console", "link", "--as", STAFF[0]], cwd=ROOT,
                          env=process_env({**env, "QOPI_PUBLIC_URL": url}), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def _signed_in(link: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(link, allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/console"
        assert "HttpOnly" in resp.headers["Set-Cookie"] and "SameSite=Strict" in resp.headers["Set-Cookie"]
    return http


async def test_expired_link_is_refused(stand: Stand, env: dict[str, str], tmp_path: Path) -> None:
    link = await _link(env, stand.url)
    with sqlite3.connect(tmp_path / "slack.sqlite3") as db:  # fifteen minutes pass
        db.execute("update console_tokens set expires_at = '2020-01-01 00:00:00.000000' where kind = 'link'")
    async with stand.http.get(link, allow_redirects=False) as resp:
        assert resp.status == 401 and "expired" in await resp.text()


async def test_csv_carries_no_formula_and_signout_ends_the_session(stand: Stand, fake: FakeSlackAPI,
                                                                   env: dict[str, str]) -> None:
    await stand.event(ss.dm_message("=HYPERLINK(\"http://evil.example\") are we eligible?", user="UP1", channel="DP1"))
    await fake.wait_for_async("chat.postMessage", 1, timeout=10, predicate=lambda c: c.params["channel"] == "DP1")
    http = await _signed_in(await _link(env, stand.url))
    try:
        async with http.get(stand.url + "/console/answers.csv") as resp:
            assert resp.status == 200
            rows = list(csv.DictReader(io.StringIO(await resp.text())))
        assert len(rows) == 1 and rows[0]["question"].startswith("'=HYPERLINK")
        async with http.get(stand.url + "/console/answers.csv?since=not-a-date") as resp:
            assert resp.status == 400
        async with http.get(stand.url + "/console") as resp:
            page = await resp.text()
            assert resp.status == 200 and resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        async with http.post(stand.url + "/console/signout", data={"csrf": "wrong"}) as resp:
            assert resp.status == 403
        async with http.post(stand.url + "/console/signout", data={"csrf": csrf}) as resp:
            assert resp.status == 200
        async with http.get(stand.url + "/console/answers") as resp:
            assert resp.status == 401 and "HYPERLINK" not in await resp.text()
    finally:
        await http.close()
