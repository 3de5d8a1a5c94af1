"""The answer log and `qopi-bot report` (contract section 9), over the CLI as a process and
a real SQLite file: every answer in a stored conversation is recorded, scrubbed, with the
knowledge version in force and how sure the understanding was."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

from qopi_bot.knowledge import load_knowledge
from tests.conftest import ROUNDS_FIXTURE, Cli


def _rows(db: Path) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("select * from answer_log order by id")]


def test_every_answer_is_recorded_and_reported(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite3"
    cli = Cli(f"sqlite+aiosqlite:///{db}")
    cli.ask_json("We scored 81% on the certification pathway in Fall 2025. Can we apply?", "--conversation", "p1")
    cli.ask_json("Are we eligible? Patient John, MRN 12345678, DOB 01/02/1960", "--conversation", "p2")
    cli.ask_json("blorp zzzt quux", "--conversation", "p3")
    escalated = cli.ask_json("We only want to certify our downtown site", "--conversation", "p4")

    rows = _rows(db)
    assert len(rows) == 4
    first = rows[0]
    assert first["channel"] == "cli" and first["conversation_key"] == "cli:p1"
    assert first["intent"] == "eligibility" and first["outcome"] == "answered" and first["verdict"] == "eligible"
    assert "ELIG-SCORE" in json.loads(first["rules"]) and json.loads(first["facts"])["score"] == 81
    assert first["understood"] == "clear" and first["confidence"] > 0.5
    # The version is the knowledge folder's content hash with the rounds file in use.
    assert first["knowledge_version"] == load_knowledge(rounds_file=ROUNDS_FIXTURE).version
    # Patient details never reach the log.
    assert "12345678" not in rows[1]["question"] and "1960" not in rows[1]["question"]
    assert "[mrn]" in rows[1]["question"]
    assert rows[2]["understood"] == "not_understood"
    assert rows[3]["case_id"] == escalated["case_id"] and rows[3]["outcome"] == "escalated"

    done = cli.run("report", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["questions"] == 4 and report["escalations"] == 1 and report["escalation_rate"] == 0.25
    assert sum(report["by_intent"].values()) == 4 and report["by_intent"]["subset"] == 1
    assert report["by_outcome"]["escalated"] == 1 and report["by_verdict"]["eligible"] == 1
    assert report["not_understood"] == 1 and report["cases"] == {"open": 1, "claimed": 0, "resolved": 0}

    text = cli.run("report").stdout
    assert "4 questions" in text and "Escalated to staff: 1 (25.0%)" in text and "Not understood: 1" in text

    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    later = json.loads(cli.run("report", "--json", "--since", tomorrow).stdout)
    assert later["questions"] == 0 and later["by_intent"] == {} and later["cases"]["open"] == 1
    bad = cli.run("report", "--since", "last week")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_one_off_questions_need_no_database(tmp_path: Path) -> None:
    # A one-off `ask` is an operator at a terminal; it stays off the database (and the log).
    cli = Cli(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/db.sqlite3")
    assert cli.run("ask", "What score do we need?").returncode == 0
