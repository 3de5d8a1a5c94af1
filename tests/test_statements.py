"""Facts stated in words no pattern knows are read by statement models learned from
knowledge/statements/, through the CLI and `qopi-bot knowledge check` staff use."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from qopi_bot.knowledge import load_knowledge
from qopi_bot.understanding import statements
from qopi_bot.understanding.classifier import examples_hash
from tests.test_understanding import CLI, ROOT, ask


def _copy_knowledge(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return folder


def _check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), "knowledge", "check"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "QOPI_KNOWLEDGE_DIR": str(folder)})


def test_the_shipped_statement_model_was_trained_on_the_shipped_statements() -> None:
    kb = load_knowledge()
    assert kb.statement_examples, "knowledge/statements/ has no examples"
    stored = statements._stored(kb)
    examples = statements._examples(kb, "same_policies")
    assert "same_policies" in stored, "knowledge/statement-model.json is missing: run qopi-bot knowledge check"
    assert f'"source_hash":"{examples_hash(examples)}"' in stored["same_policies"], "run qopi-bot knowledge check"


def test_staff_teach_a_new_way_of_saying_the_sites_share_policies(tmp_path: Path) -> None:
    folder = _copy_knowledge(tmp_path)
    env = {"QOPI_KNOWLEDGE_DIR": str(folder)}
    message = "Our three clinics all run by the Zorblat codex of procedures, word for word. Do we apply together or one by one?"
    [before] = ask(tmp_path, message, env=env)
    # No pattern and no example knows the "Zorblat codex": the bot asks rather than guess. (A shared
    # reading also needs a word for policies or procedures somewhere in the message: the contract
    # decides on them, and a common EMR alone says nothing of them.)
    assert before["intent"] == "multi_site" and before["outcome"] == "needs_info"
    assert "same_policies" in before["missing"]

    path = folder / "statements" / "same_policies.yaml"
    data = yaml.safe_load(path.read_text())
    data["readings"]["shared"] += [
        "every one of our clinics runs by the Zorblat codex of procedures, word for word",
        "both offices run by the Zorblat codex of procedures, word for word, no local versions",
        "all four sites run by the Zorblat codex of procedures; how do we apply?",
    ]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    check = _check(folder)
    assert check.returncode == 0, check.stderr
    assert "statement models retrained and saved" in check.stdout

    [after] = ask(tmp_path, message, env=env)
    assert after["outcome"] == "answered" and after["facts"]["entity"] == "one_entity"
    assert "ENTITY-PRACTICE" in after["rules"]
    assert "share" in after["text"].lower() or "same policies" in after["text"].lower()  # the reading is shown
    assert "statement models up to date" in _check(folder).stdout


def test_a_message_under_two_readings_or_an_unknown_reading_is_refused(tmp_path: Path) -> None:
    folder = _copy_knowledge(tmp_path)
    path = folder / "statements" / "same_policies.yaml"
    data = yaml.safe_load(path.read_text())
    data["readings"]["separate"].append(data["readings"]["shared"][0])
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    check = _check(folder)
    assert check.returncode == 1
    assert "same_policies.yaml" in check.stderr and "also listed under shared" in check.stderr

    data = yaml.safe_load((ROOT / "knowledge" / "statements" / "same_policies.yaml").read_text())
    data["readings"]["maybe"] = ["our sites may or may not share policies"]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    check = _check(folder)
    assert check.returncode == 1
    assert "unknown reading `maybe`" in check.stderr


def test_a_short_reply_is_left_to_the_question_the_bot_asked() -> None:
    kb = load_knowledge()
    # Too few words for a model: "yes, both" answers the bot's own question, which the dialogue reads.
    assert statements.read(kb, "same_policies", "yes, both sites") == (None, None)


def test_integration_evidence_alone_does_not_say_the_policies_are_shared(tmp_path: Path) -> None:
    # The contract decides on policies; a shared EMR, tax ID and floating nurses say nothing of them.
    [answer] = ask(tmp_path, "we use one EMR and one tax ID across both sites and the nurses float between them. "
                             "is that enough to apply as one?")
    assert answer["outcome"] == "needs_info" and "same_policies" in answer["missing"]
