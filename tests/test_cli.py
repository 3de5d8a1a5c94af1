"""`qopi-bot ask` and friends as a user runs them: a separate process, real SQLite file."""

from __future__ import annotations

import json
import os
import select
import subprocess
from pathlib import Path

from tests.conftest import QOPI_BOT, ROUNDS_FIXTURE, Cli


def test_ask_json_threshold(cli: Cli) -> None:
    a = cli.ask_json("What score do we need to be eligible for QOPI certification?", "--today", "2026-03-01")
    assert a["facts"]["threshold"] == 75 and "ELIG-SCORE" in a["rules"]
    assert set(a) >= {"intent", "outcome", "verdict", "rules", "facts", "missing", "case_id", "text"}


def test_ask_plain_text_output(cli: Cli) -> None:
    done = cli.run("ask", "--today", "2026-03-01", "--rounds", str(ROUNDS_FIXTURE),
                   "We scored 81% on the certification pathway in Fall 2025. Can we apply?")
    assert done.returncode == 0
    assert "eligible" in done.stdout and "11 December 2026" in done.stdout and "rules:" in done.stdout


def test_today_changes_the_answer(cli: Cli) -> None:
    q = "We finished the Fall 2025 round with 92% on the pathway. Can we still apply?"
    before = cli.ask_json(q, "--today", "2026-12-11")
    after = cli.ask_json(q, "--today", "2026-12-12")
    assert before["facts"]["can_apply"] is True and before["verdict"] == "eligible"
    assert after["facts"]["can_apply"] is False and after["verdict"] == "not_eligible" and "VALIDITY" in after["rules"]


def test_stream_one_line_out_per_line_in_errors_do_not_stop_it(cli: Cli) -> None:
    out = cli.stream([
        {"text": "Are we eligible?", "conversation": "a", "today": "2026-03-01"},
        "{not json",
        {"text": "hello", "today": "2026-13-45"},
        {"conversation": "a"},
        {"text": "", "today": "2026-03-01"},
        "How many certification standards are there?",
        {"text": "We got 81 percent on the pathway in Fall 2025", "conversation": "a", "today": "2026-03-01"},
        "",
    ])
    assert len(out) == 8
    assert out[0]["outcome"] == "needs_info" and out[0]["missing"] == ["score"]
    assert [o["outcome"] for o in out[1:5]] == ["error"] * 4
    assert "today" in out[2]["text"] and "text" in out[3]["text"]
    assert out[5]["facts"]["standard_count"] == 20
    assert out[6]["verdict"] == "eligible" and out[6]["facts"]["valid_until"] == "2026-12-11"
    assert out[7]["outcome"] == "error"


def test_stream_conversations_are_separate(cli: Cli) -> None:
    out = cli.stream([
        {"text": "Is our score still valid?", "conversation": "x", "today": "2026-03-01"},
        {"text": "Is our score still valid?", "conversation": "y", "today": "2026-03-01"},
        {"text": "Spring 2025", "conversation": "x", "today": "2026-03-01"},
        {"text": "Fall 2024", "conversation": "y", "today": "2026-03-01"},
    ])
    assert out[2]["facts"]["valid_until"] == "2026-06-12" and out[2]["facts"]["can_apply"] is True
    assert out[3]["facts"]["valid_until"] == "2025-12-12" and out[3]["facts"]["can_apply"] is False


def test_stream_is_flushed_line_by_line(db_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_url}
    proc = subprocess.Popen([QOPI_BOT, "ask", "--json", "--rounds", str(ROUNDS_FIXTURE)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        for question in ("How many measures are in the pathway?", "What's the QCP phone number?"):
            proc.stdin.write(json.dumps({"text": question}) + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, "no answer while stdin is still open"
            assert json.loads(proc.stdout.readline())["outcome"] == "answered"
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_conversation_continues_across_processes(cli: Cli) -> None:
    first = cli.ask_json("We have 3 locations. How should we apply?", "--conversation", "sites-1", "--today", "2026-03-01")
    assert first["outcome"] == "needs_info" and first["missing"] == ["same_policies"]
    second = cli.ask_json("yes, same policies everywhere", "--conversation", "sites-1", "--today", "2026-03-01")
    assert second["facts"]["entity"] == "one_entity"


def test_rounds_from_environment(cli: Cli, tmp_path: Path) -> None:
    rounds = tmp_path / "rounds.yaml"
    rounds.write_text("rounds:\n  - {season: fall, year: 2026, closes: 2026-11-20}\n")
    cli.env["QOPI_ROUNDS_FILE"] = str(rounds)
    done = cli.run("ask", "--json", "--today", "2026-03-01", "Until when is our Fall 2025 score valid?")
    assert json.loads(done.stdout)["facts"]["valid_until"] == "2026-11-20"


def test_bad_rounds_file_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    rounds = tmp_path / "rounds.yaml"
    rounds.write_text("rounds:\n  - {season: summer, year: 2026}\n")
    done = cli.run("ask", "--json", "--rounds", str(rounds), "hi")
    assert done.returncode == 2 and "knowledge error" in done.stderr and "round #1" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_today_is_a_clear_error(cli: Cli) -> None:
    done = cli.run("ask", "--today", "yesterday", "hi")
    assert done.returncode == 2 and "--today" in done.stderr and "Traceback" not in done.stderr


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    cli = Cli(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/db.sqlite3")
    assert cli.run("ask", "hi").returncode == 0  # a one-off question needs no database
    done = cli.run("ask", "--conversation", "c1", "hi")
    assert done.returncode == 1 and "cannot reach the database" in done.stderr and "Traceback" not in done.stderr


def test_escalation_opens_a_case_staff_can_work(cli: Cli) -> None:
    a = cli.ask_json("We only want to certify our downtown site, not the whole practice.", "--conversation", "sub-1")
    assert a["outcome"] == "escalated" and a["case_id"].startswith("QCP-") and a["case_id"] in a["text"]
    more = cli.ask_json("The downtown site has two oncologists.", "--conversation", "sub-1")
    assert more["outcome"] == "escalated" and more["case_id"] == a["case_id"]

    listed = json.loads(cli.run("cases", "list", "--json").stdout)
    assert [c["id"] for c in listed] == [a["case_id"]]
    assert listed[0]["status"] == "open" and listed[0]["reason"] == "ENTITY-SUBSET" and listed[0]["channel"] == "cli"
    shown = json.loads(cli.run("cases", "show", a["case_id"], "--json").stdout)
    assert any("two oncologists" in (e["text"] or "") for e in shown["events"])

    assert cli.run("cases", "reply", a["case_id"], "We can discuss a subset; please call us.").returncode == 0
    assert cli.run("cases", "resolve", a["case_id"]).returncode == 0
    assert json.loads(cli.run("cases", "list", "--status", "resolved", "--json").stdout)[0]["id"] == a["case_id"]
    again = cli.run("cases", "resolve", a["case_id"])
    assert again.returncode == 1 and "already resolved" in again.stderr

    reopened = cli.ask_json("One more detail: they share one EMR.", "--conversation", "sub-1")
    assert reopened["case_id"] == a["case_id"]
    assert json.loads(cli.run("cases", "list", "--status", "open", "--json").stdout)[0]["id"] == a["case_id"]


def test_unknown_case_is_reported(cli: Cli) -> None:
    done = cli.run("cases", "show", "QCP-9999")
    assert done.returncode == 1 and "no case" in done.stderr


def test_human_request_gets_a_case(cli: Cli) -> None:
    a = cli.ask_json("Can I talk to a person please?")
    assert a["intent"] == "human" and a["outcome"] == "escalated" and a["case_id"]


def test_outbox_retry_requeues_only_failed_items(cli: Cli, db_url: str) -> None:
    import asyncio

    from qopi_bot.store import Store

    async def make_failed() -> tuple[int, int]:
        store = Store.from_url(db_url)
        await store.create_schema()
        failed = await store.outbox_put("email", "reply", {"to": "x@example.org"}, dedupe_key="k-failed", recipient="x@example.org")
        pending = await store.outbox_put("email", "reply", {"to": "y@example.org"}, dedupe_key="k-pending", recipient="y@example.org")
        [item] = await store.outbox_claim("email", 60, limit=1)
        await store.outbox_failed(item.id, "relay refused")
        await store.close()
        assert failed is not None and pending is not None
        return failed, pending

    failed, pending = asyncio.run(make_failed())
    listed = json.loads(cli.run("outbox", "list", "--status", "failed", "--json").stdout)
    assert [i["id"] for i in listed] == [failed] and listed[0]["last_error"] == "relay refused"
    done = cli.run("outbox", "retry", str(failed))
    assert done.returncode == 0 and f"#{failed}" in done.stdout
    assert json.loads(cli.run("outbox", "list", "--status", "failed", "--json").stdout) == []
    again = cli.run("outbox", "retry", str(failed), str(pending))
    assert again.returncode == 1 and "left alone" in again.stderr
