"""Knowledge drives everything (contract section 7): the threshold, rule wording, contacts
and round calendar come only from the knowledge folder (QOPI_KNOWLEDGE_DIR). A changed copy
changes the answers given by the CLI as a process; a folder that contradicts itself is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

from qopi_bot.knowledge import knowledge_dir
from tests.conftest import ROUNDS_FIXTURE, Cli

QUESTION = "We scored 78% on the certification pathway in Fall 2025. Can we apply?"


def copy_knowledge(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(knowledge_dir(), target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


def set_threshold(folder: Path, percent: int) -> None:
    """What staff do when the program's text changes: the quote, the source text and the value."""
    for name in ("rules.yaml", "source/qcp-eligibility.txt"):
        path = folder / name
        path.write_text(path.read_text(encoding="utf-8").replace("75%", f"{percent}%"), encoding="utf-8")
    rules = folder / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("score_threshold: 75", f"score_threshold: {percent}"),
                     encoding="utf-8")


def test_threshold_contacts_and_rounds_come_from_the_folder(tmp_path: Path) -> None:
    cli = Cli(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    before = cli.ask_json(QUESTION, "--today", "2026-03-01")
    assert before["verdict"] == "eligible" and before["facts"]["threshold"] == 75 and "75%" in before["text"]

    folder = copy_knowledge(tmp_path)
    set_threshold(folder, 80)
    contacts = folder / "contacts.yaml"
    contacts.write_text(contacts.read_text(encoding="utf-8").replace("qopicertification@asco.org", "qcp-desk@example.org"),
                        encoding="utf-8")
    cli.env["QOPI_KNOWLEDGE_DIR"] = str(folder)
    assert cli.run("knowledge", "check").returncode == 0

    after = cli.ask_json(QUESTION, "--today", "2026-03-01")
    assert after["verdict"] == "not_eligible" and after["facts"]["threshold"] == 80
    assert after["rules"] == ["ELIG-SCORE"] and "80%" in after["text"] and "75%" not in after["text"]
    told = cli.ask_json("What score do we need to pass?")
    assert told["facts"]["threshold"] == 80 and "80.0% passes, 79.99% does not" in told["text"]
    contact = cli.ask_json("How do I contact the QCP team?")
    assert contact["facts"]["email"] == "qcp-desk@example.org" and "qcp-desk@example.org" in contact["text"]

    # The round calendar: a close date published in the copy is the one the answer gives.
    rounds = folder / "rounds.yaml"
    rounds.write_text(ROUNDS_FIXTURE.read_text(encoding="utf-8"), encoding="utf-8")
    dated = cli.run("ask", "--json", "--today", "2026-03-01", "Until when is our Fall 2025 score valid?")
    assert dated.returncode == 0 and '"valid_until": "2026-' in dated.stdout


def test_a_threshold_the_quote_does_not_state_is_refused(tmp_path: Path) -> None:
    folder = copy_knowledge(tmp_path)
    rules = folder / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("score_threshold: 75", "score_threshold: 70"),
                     encoding="utf-8")
    cli = Cli(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    cli.env["QOPI_KNOWLEDGE_DIR"] = str(folder)
    done = cli.run("knowledge", "check")
    assert done.returncode == 1 and "score_threshold 70" in done.stderr and "ELIG-SCORE" in done.stderr
    asked = cli.run("ask", "What score do we need?")
    assert asked.returncode != 0 and "score_threshold" in asked.stderr and "Traceback" not in asked.stderr
