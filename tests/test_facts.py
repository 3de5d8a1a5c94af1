"""Facts beyond the eligibility page (knowledge/facts.yaml): stated only with their public
source, which the answer names; never a fee. Over the CLI as a process."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import Cli
from tests.test_knowledge_drives import copy_knowledge


def _ask(cli: Cli, question: str) -> str:
    done = cli.run("ask", question)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_fact_is_answered_with_its_source(tmp_path: Path) -> None:
    cli = Cli(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    term = _ask(cli, "How long does QOPI certification last?")
    assert "three years" in term and "Source: QOPI Certification Program: Become Recertified" in term
    assert "http://www.instituteforquality.org/qcp/become-recertified" in term and "read 30 November 2026" in term
    pending = _ask(cli, "What does certification pending mean?")
    assert "one year" in pending and "https://www.instituteforquality.org/qcp/certification-levels" in pending
    visit = _ask(cli, "Will someone do an on-site survey of our practice?")
    assert "Sources:" in visit and "certification-standards" in visit and "2017" in visit

    fee = _ask(cli, "How much is the certification fee?")
    assert "won't guess" in fee and not re.search(r"[$€£]\s?\d|\d\s?(usd|dollars)", fee, re.I)


def test_without_the_entry_the_bot_does_not_say_it(tmp_path: Path) -> None:
    folder = copy_knowledge(tmp_path)
    (folder / "facts.yaml").unlink()
    cli = Cli(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    cli.env["QOPI_KNOWLEDGE_DIR"] = str(folder)
    term = _ask(cli, "How long does QOPI certification last?")
    assert "three years" not in term and "won't guess" in term and "qopicertification@asco.org" in term


def test_a_fee_or_a_sourceless_fact_is_refused(tmp_path: Path) -> None:
    folder = copy_knowledge(tmp_path)
    facts = folder / "facts.yaml"
    original = facts.read_text(encoding="utf-8")
    cli = Cli(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    cli.env["QOPI_KNOWLEDGE_DIR"] = str(folder)

    facts.write_text(original + """
  - id: application_cost
    topic: the cost
    keywords: [cost]
    answer: The application costs $4,500 per practice.
    sources:
      - {title: "Somewhere", url: "https://example.org/fees", read: 2026-11-30}
""", encoding="utf-8")
    done = cli.run("knowledge", "check")
    assert done.returncode == 1 and "fee" in done.stderr and "application_cost" in done.stderr

    facts.write_text(original + """
  - id: surveyors
    topic: who visits
    keywords: [surveyor]
    answer: An oncology-certified nurse surveyor makes the site visit.
    sources: []
""", encoding="utf-8")
    done = cli.run("knowledge", "check")
    assert done.returncode == 1 and "surveyors" in done.stderr and "sources" in done.stderr


def test_staff_add_a_fact_with_new_keywords(tmp_path: Path) -> None:
    folder = copy_knowledge(tmp_path)
    facts = folder / "facts.yaml"
    facts.write_text(facts.read_text(encoding="utf-8") + """
  - id: collection_window
    topic: how long a collection round stays open
    keywords: [collection window]
    answer: As of the program's 2017 pages, each round had an eight-week collection window.
    sources:
      - {title: "QOPI Certification Program: Certification Standards", url: "http://www.instituteforquality.org/qcp/certification-standards", read: 2026-11-30}
""", encoding="utf-8")
    cli = Cli(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    cli.env["QOPI_KNOWLEDGE_DIR"] = str(folder)
    assert cli.run("knowledge", "check").returncode == 0
    said = _ask(cli, "How long is the collection window?")
    assert "eight-week" in said and "Source: QOPI Certification Program: Certification Standards" in said
