"""The knowledge base: verbatim sources, counts, and clear errors for broken files."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from qopi_bot.core.kb import RULE_IDS, Knowledge
from qopi_bot.core.rules import IMPLEMENTED_BY
from qopi_bot.knowledge import KnowledgeError, load_knowledge, load_rounds

from tests.conftest import QOPI_BOT

SHARED_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "domain" / "000_09ff4a78a752028f.txt"
KNOWLEDGE = Path(__file__).resolve().parents[1] / "knowledge"


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_every_contract_rule_has_a_verbatim_quote() -> None:
    kb = load_knowledge()
    assert set(RULE_IDS) == set(kb.rules)
    source = flat(kb.source_text)
    for rule in kb.rules.values():
        assert flat(rule.source) in source, rule.id


def test_shipped_source_text_is_the_programs_text() -> None:
    shipped = (KNOWLEDGE / "source" / "qcp-eligibility.txt").read_text(encoding="utf-8")
    if SHARED_SOURCE.exists():  # beside the repo in development and CI
        assert shipped == SHARED_SOURCE.read_text(encoding="utf-8")
    assert "The passing threshold for these measures in aggregate is 75%." in shipped


def test_every_rule_is_implemented_in_code() -> None:
    import qopi_bot.core  # noqa: F401  (registers the @implements markers)

    assert set(RULE_IDS) <= set(IMPLEMENTED_BY), set(RULE_IDS) - set(IMPLEMENTED_BY)


def test_counts_and_contacts(kb: Knowledge) -> None:
    assert len(kb.measures) == 25 and kb.standard_count == 20 and len(kb.standard_domains) == 4
    assert [m.id for m in kb.modules] == ["core", "symptom_toxicity", "end_of_life", "breast", "lung", "colorectal"]
    assert kb.contacts.email == "qopicertification@asco.org" and kb.contacts.phone == "571-483-1669"


def test_shipped_calendar_invents_no_dates() -> None:
    kb = load_knowledge()
    assert all(r.closes is None and r.opens is None for r in kb.rounds), "only published dates belong in rounds.yaml"


BROKEN = {
    "bad season": ("rounds:\n  - {season: winter, year: 2026}\n", "round #1"),
    "impossible date": ("rounds:\n  - {season: fall, year: 2026, closes: 2026-02-30}\n", "closes"),
    "close before open": ("rounds:\n  - {season: fall, year: 2026, opens: 2026-09-01, closes: 2026-08-01}\n", "before opens"),
    "duplicate": ("rounds:\n  - {season: fall, year: 2026}\n  - {season: Fall, year: 2026}\n", "duplicate"),
    "unknown key": ("rounds:\n  - {season: fall, year: 2026, closing: 2026-12-01}\n", "unknown key"),
    "not yaml": ("rounds: [\n", "not valid YAML"),
    "no list": ("seasons: []\n", "rounds"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_rounds_file_is_refused_with_a_clear_message(tmp_path: Path, name: str) -> None:
    text, expected = BROKEN[name]
    path = tmp_path / "rounds.yaml"
    path.write_text(text)
    with pytest.raises(KnowledgeError) as err:
        load_rounds(path)
    assert str(path) in str(err.value) and expected in str(err.value)
    done = subprocess.run([QOPI_BOT, "knowledge", "check", "--rounds", str(path)], capture_output=True, text=True)
    assert done.returncode != 0
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_knowledge_check_passes_on_shipped_files() -> None:
    done = subprocess.run([QOPI_BOT, "knowledge", "check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "15 rules" in done.stdout and "25 measures" in done.stdout and "20 standards" in done.stdout


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: (d / "measures.yaml").write_text("measures:\n  - {number: 1}\n"), "lists 1 measures"),
    (lambda d: (d / "standards.yaml").write_text((d / "standards.yaml").read_text().replace("count: 20", "count: 19")), "20 standards"),
    (lambda d: (d / "rules.yaml").write_text((d / "rules.yaml").read_text().replace("id: VALIDITY", "id: VALIDITYX")), "VALIDITY"),
    (lambda d: (d / "rules.yaml").write_text((d / "rules.yaml").read_text().replace("is 75%.", "is 70%.")), "not verbatim"),
])
def test_knowledge_errors_name_file_and_entry(tmp_path: Path, mutate: object, expected: str) -> None:
    copy = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, copy)
    mutate(copy)  # type: ignore[operator]
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(copy)
    assert expected in str(err.value) and str(copy) in str(err.value)
