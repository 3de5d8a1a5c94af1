"""Conditions an eligibility message states in words no pattern knows (a track, a pending report,
charts left out) are read by the condition model learned from knowledge/statements/conditions.yaml,
through the CLI and `qopi-bot knowledge check` staff use."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from qopi_bot.knowledge import CONDITION_MODEL_FILE, load_knowledge
from qopi_bot.understanding import conditions
from tests.test_statements import _check, _copy_knowledge
from tests.test_understanding import ROOT, ask

CONDITIONS = Path("statements") / "conditions.yaml"


def test_the_shipped_condition_model_was_trained_on_the_shipped_examples() -> None:
    kb = load_knowledge()
    assert len(kb.condition_examples) > 500, "knowledge/statements/conditions.yaml has too few messages"
    stored = json.loads((ROOT / "knowledge" / CONDITION_MODEL_FILE).read_text())
    assert stored["source_hash"] == conditions.source_hash(kb.condition_examples), "run qopi-bot knowledge check"
    assert conditions.stored_model_json(kb) is not None


def test_staff_teach_a_new_way_of_saying_the_score_is_from_another_track(tmp_path: Path) -> None:
    folder = _copy_knowledge(tmp_path)
    env = {"QOPI_KNOWLEDGE_DIR": str(folder)}
    message = "Fall 2025 we got 84% through the Quibbleway option of QOPI. Can we apply for certification?"
    [before] = ask(tmp_path, message, env=env)
    # Nothing knows the "Quibbleway option": the score alone decides, as the contract's order says.
    assert before["verdict"] == "eligible" and "ELIG-PATHWAY" not in before["rules"]

    path = folder / CONDITIONS
    data = yaml.safe_load(path.read_text())
    data["conditions"]["other_track"] += [
        "we reported through the Quibbleway option, 82% in spring 2025 - eligible?",
        "our 79 came from the Quibbleway option of QOPI last fall. does it count for certification?",
        "Quibbleway option again this round, score 88. ok to apply?",
        "Hi - we did the Quibbleway option in the fall 2025 round and got 80%. Are we able to apply?",
        "score 77, quibbleway option, fall 2025. can we go for certification?",
    ]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000))
    check = _check(folder)
    assert check.returncode == 0, check.stderr
    assert "condition model retrained and saved" in check.stdout

    [after] = ask(tmp_path, message, env=env)
    assert after["verdict"] == "not_eligible" and "ELIG-PATHWAY" in after["rules"]
    # The reading is shown, so a misread is visible at once.
    assert "i read:" in after["text"].lower() and "not the certification pathway" in after["text"].lower()
    assert "condition model up to date" in _check(folder).stdout


def test_a_reply_too_short_to_read_is_left_to_the_thread(tmp_path: Path) -> None:
    # "not yet" alone carries too little for a model: the pending question in a thread reads it.
    kb = load_knowledge()
    assert conditions.read(kb, "not yet") == {}


def test_a_message_under_none_and_a_condition_or_an_unknown_condition_is_refused(tmp_path: Path) -> None:
    folder = _copy_knowledge(tmp_path)
    path = folder / CONDITIONS
    data = yaml.safe_load(path.read_text())
    data["conditions"]["report_pending"].append(data["conditions"]["none"][0])
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000))
    check = _check(folder)
    assert check.returncode == 1
    assert "conditions.yaml" in check.stderr and "listed under `none` and under a condition" in check.stderr

    data = yaml.safe_load((ROOT / "knowledge" / CONDITIONS).read_text())
    data["conditions"]["maybe_later"] = ["we might finish abstraction next week"]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000))
    check = _check(folder)
    assert check.returncode == 1
    assert "unknown condition `maybe_later`" in check.stderr


def test_a_stale_model_is_retrained_at_start_up_so_answers_never_use_old_readings(tmp_path: Path) -> None:
    folder = _copy_knowledge(tmp_path)
    env = {"QOPI_KNOWLEDGE_DIR": str(folder)}
    path = folder / CONDITIONS
    data = yaml.safe_load(path.read_text())
    data["conditions"]["other_track"] += [f"we did the Quibbleway option, {n}% in fall 2025 - can we apply?" for n in (78, 81, 85, 90, 93)]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000))
    # No `knowledge check`: the stored model no longer matches, so it is trained for this run.
    [answer] = ask(tmp_path, "Fall 2025 we got 84% through the Quibbleway option of QOPI. Can we apply?", env=env)
    assert answer["verdict"] == "not_eligible" and "ELIG-PATHWAY" in answer["rules"]
