"""The staff console in a real browser (headless Debian Chromium driven by Playwright),
against our real web process, the Slack Web API stand-in and a real SQLite file.

A practice asks in a Slack DM and a case opens; staff sign in with a one-time link printed
by `qopi-bot console link` (a process), see the queue, claim the case (the Slack case
message shows it), reply (the reply reaches the practice's DM through the stand-in), read
the answer log, "needs teaching" and the charts. Each page is screenshotted under the
test's temp dir; assertions read the DOM, never pixels. Without a session nothing shows."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.waiting import wait_until_async
from tests.slack_harness import (  # noqa: F401  (fixtures)
    ROOT, STAFF, STAFF_CHANNEL, Stand, block_text, env, fake, process_env, running, settings_from,
)

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
PRACTICE, PRACTICE_DM = "UPRAC9", "DPRAC9"

pytestmark = pytest.mark.slow


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (.ci/run installs it)"
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            await b.close()


async def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the web process runs on this event loop and must not stall (SQLite locks).
    return await asyncio.to_thread(_cli_sync, env, *args)


def _cli_sync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qopi_bot.cli", *args], cwd=ROOT, env=process_env(env),
                          capture_output=True, text=True, timeout=60)


async def _shot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "screens" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000  # a rendered page, not an empty image
    return path


async def test_console_end_to_end(env: dict[str, str], fake: FakeSlackAPI, browser: Browser, tmp_path: Path) -> None:
    async with running(settings_from(env), fake) as stand:
        env = {**env, "QOPI_PUBLIC_URL": stand.url}
        await _practice_asks(stand, fake)
        await _nothing_without_a_session(stand)

        # Only staff get a link; a link is printed under QOPI_PUBLIC_URL.
        refused = await _cli(env, "console", "link", "--as", "UNOBODY")
        assert refused.returncode != 0 and "QOPI_STAFF_USERS" in refused.stderr and refused.stdout == ""
        made = await _cli(env, "console", "link", "--as", STAFF[0])
        assert made.returncode == 0, made.stderr
        link = made.stdout.strip()
        assert link.startswith(f"{stand.url}/console/signin?token=")

        context = await browser.new_context(viewport={"width": 1366, "height": 800})
        page = await context.new_page()
        await page.goto(link)
        assert page.url == f"{stand.url}/console"
        cookie = next(c for c in await context.cookies() if c["name"] == "qopi_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert await page.get_by_test_id("user").inner_text() == STAFF[0]

        # The queue: the case, open, with its reason and channel.
        row = page.locator("tr[data-case='QCP-0001']")
        assert "Open" in await row.inner_text() and "ENTITY-SUBSET" in await row.inner_text()
        assert "Slack" in await row.inner_text()
        await _shot(page, tmp_path, "1-queue")

        # Claim: the case service records it and the Slack case message is updated.
        await row.get_by_role("button", name="Claim").click()
        await page.wait_for_url("**/console/cases/QCP-0001**")
        assert await page.get_by_test_id("status").inner_text() == "Claimed"
        assert await page.get_by_test_id("claimed-by").inner_text() == STAFF[0]
        case = await stand.service.store.get_case(1)
        assert case is not None and case.status == "claimed" and case.claimed_by == STAFF[0]
        (update,) = await fake.wait_for_async("chat.update", 1, timeout=10)
        assert f"Claimed by <@{STAFF[0]}>" in block_text(update.params)

        # The transcript shows the practice's words and the bot's answer.
        transcript = await page.get_by_test_id("transcript").inner_text()
        assert "downtown site" in transcript and "QCP-0001" in transcript
        await _shot(page, tmp_path, "2-case")

        # Reply: it reaches the practice's DM through the Slack stand-in.
        answer = "Yes, a single site can be considered: please send us the site's details."
        await page.get_by_label("Your answer reaches the practice").fill(answer)
        await page.get_by_role("button", name="Send reply").click()
        await page.wait_for_url("**done=**")
        assert "Reply sent" in await page.get_by_test_id("flash").inner_text()
        relayed = await fake.wait_for_async("chat.postMessage", 2, timeout=10,
                                            predicate=lambda c: c.params["channel"] == PRACTICE_DM)
        assert answer in relayed[-1].params["text"] and "QCP-0001" in relayed[-1].params["text"]
        assert answer in await page.get_by_test_id("transcript").inner_text()

        # A POST without the session's CSRF token changes nothing.
        forged = await page.request.post(f"{stand.url}/console/cases/QCP-0001/resolve", form={"csrf": "guess"})
        assert forged.status == 403
        assert (await stand.service.store.get_case(1)).status == "claimed"  # type: ignore[union-attr]

        # The answer log: every answer, filterable; the CSV agrees with `qopi-bot report`.
        await page.get_by_role("link", name="Answer log").click()
        table = page.get_by_test_id("answers")
        assert await table.locator("tbody tr").count() == 3
        assert "downtown site" in await table.inner_text() and "subset" in await table.inner_text()
        await _shot(page, tmp_path, "3-answers")
        await page.get_by_label("Outcome").select_option("escalated")
        await page.get_by_role("button", name="Filter").click()
        assert await table.locator("tbody tr").count() == 1
        csv_response = await page.request.get(f"{stand.url}/console/answers.csv")
        assert csv_response.status == 200 and csv_response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(await csv_response.text())))
        report = json.loads((await _cli(env, "report", "--json")).stdout)
        assert len(rows) == report["questions"] == 3
        assert sum(r["outcome"] == "escalated" for r in rows) == report["escalations"] == 1
        for name, counted in report["by_intent"].items():
            assert sum((r["intent"] or "none") == name for r in rows) == counted

        # Needs teaching: the message the bot could not read, with its YAML example.
        await page.get_by_role("link", name="Needs teaching").click()
        items = page.get_by_test_id("teaching")
        assert "blorp zzzt quux" in await items.inner_text()
        yaml_text = await items.locator("pre.yaml").first.inner_text()
        assert 'knowledge/examples/' in yaml_text and '- "blorp zzzt quux"' in yaml_text
        await items.locator("select.intent").first.select_option("contact")
        assert "knowledge/examples/contact.yaml" in await items.locator("pre.yaml").first.inner_text()
        await _shot(page, tmp_path, "4-teaching")

        # Charts: drawn on the server as SVG, with the numbers they show.
        await page.get_by_role("link", name="Charts").click()
        assert await page.locator("svg[aria-label='Questions per day by intent'] rect").count() >= 1
        assert await page.locator("svg[aria-label='Answers by outcome'] title").filter(has_text="escalated: 1").count() == 1
        assert "3" in await page.get_by_test_id("stats").inner_text()
        await _shot(page, tmp_path, "5-charts")

        # A link works once.
        again = await (await browser.new_context()).new_page()
        response = await again.goto(link)
        assert response is not None and response.status == 401
        assert "not valid" in await again.content() and "QCP-0001" not in await again.content()

        await _slack_console_command(stand, fake, browser)


async def _practice_asks(stand: Stand, fake: FakeSlackAPI) -> None:
    await stand.event(ss.dm_message("We only want to certify our downtown site", user=PRACTICE, channel=PRACTICE_DM))
    await fake.wait_for_async("chat.postMessage", 1, timeout=10, predicate=lambda c: c.params["channel"] == STAFF_CHANNEL)
    await fake.wait_for_async("chat.postMessage", 1, timeout=10, predicate=lambda c: c.params["channel"] == PRACTICE_DM)
    await stand.event(ss.dm_message("What score do we need to pass?", user="UPRAC8", channel="DPRAC8"))
    await stand.event(ss.dm_message("blorp zzzt quux", user="UPRAC7", channel="DPRAC7"))
    await fake.wait_for_async("chat.postMessage", 1, timeout=10, predicate=lambda c: c.params["channel"] == "DPRAC7")

    async def logged() -> bool:
        from sqlalchemy import func, select

        from qopi_bot.schema import answer_log

        async with stand.service.store.engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(answer_log))).scalar_one() == 3
    await wait_until_async(logged, 10.0, "three answer-log rows")


async def _nothing_without_a_session(stand: Stand) -> None:
    for path in ("/console", "/console/cases/QCP-0001", "/console/answers", "/console/answers.csv",
                 "/console/teaching", "/console/charts"):
        async with stand.http.get(stand.url + path, cookies={"qopi_console": "forged"}) as resp:
            body = await resp.text()
            assert resp.status == 401, path
            assert "QCP-0001" not in body and "downtown" not in body and "blorp" not in body, path
    async with stand.http.post(stand.url + "/console/cases/QCP-0001/claim", data={"csrf": "x"}) as resp:
        assert resp.status == 401
    assert (await stand.service.store.get_case(1)).status == "open"  # type: ignore[union-attr]


async def _slack_console_command(stand: Stand, fake: FakeSlackAPI, browser: Browser) -> None:
    """`/qopi console` from staff DMs a sign-in link (no unfurl); from anyone else, nothing."""
    await stand.send(ss.slash_command_form("console", user_id="UNOBODY", channel_id="C5",
                                           response_url=fake.response_url("other")))
    (other,) = await fake.wait_for_async("response_url", 1, timeout=10, predicate=lambda c: c.name == "other")
    assert "staff" in other.params["text"] and "/console/signin" not in json.dumps(other.params)

    await stand.send(ss.slash_command_form("console", user_id=STAFF[1], channel_id="C5",
                                           response_url=fake.response_url("staff")))
    (said,) = await fake.wait_for_async("response_url", 1, timeout=10, predicate=lambda c: c.name == "staff")
    assert "DM" in said.params["text"]
    (dm,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10,
                                      predicate=lambda c: "/console/signin?token=" in c.params.get("text", ""))
    assert dm.params.get("unfurl_links") in (False, "false", "0", 0)
    url = next(w for w in dm.params["text"].split() if "/console/signin?token=" in w)
    # The web process was started without QOPI_PUBLIC_URL: links name http://127.0.0.1:$PORT.
    assert url.startswith("http://127.0.0.1:3000/console/signin?token=")
    page = await (await browser.new_context()).new_page()
    await page.goto(url.replace("http://127.0.0.1:3000", stand.url))
    assert page.url == f"{stand.url}/console"
    assert await page.get_by_test_id("user").inner_text() == STAFF[1]
    assert [c for c in fake.calls_for("chat.postMessage") if "/console/signin" in c.params.get("text", "")
            and c.params["channel"] != dm.params["channel"]] == []
