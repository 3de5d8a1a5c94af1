"""Understanding as practices and staff meet it: through `qopi-bot ask --json` and
`qopi-bot knowledge check`, with the knowledge folder staff edit."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from qopi_bot.knowledge import load_knowledge
from qopi_bot.models import Intent
from qopi_bot.understanding import understand
from qopi_bot.understanding.classifier import examples_hash, train
from qopi_bot.understanding.model_store import model_for, stored_model, training_examples

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).parent / "qopi-bot"
MARCH = "2026-03-01"


def ask(tmp_path: Path, *texts: str, env: dict[str, str] | None = None, conversation: str | None = None) -> list[dict[str, Any]]:
    feed = "\n".join(json.dumps({"text": t, "today": MARCH, **({"conversation": conversation} if conversation else {})})
                     for t in texts) + "\n"
    run_env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'u.sqlite3'}", **(env or {})}
    proc = subprocess.run([str(CLI), "ask", "--json", "--rounds", "tests/data/rounds_fixture.yaml"], input=feed,
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=run_env)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_the_shipped_model_was_trained_on_the_shipped_examples() -> None:
    # Someone edited knowledge/examples/ without running `qopi-bot knowledge check`: the bot would
    # still work (it trains at start-up) but start slowly; this keeps the repository honest.
    kb = load_knowledge()
    stored = stored_model(kb)
    assert stored is not None, "knowledge/intent-model.json is missing: run qopi-bot knowledge check"
    assert stored.source_hash == examples_hash(kb.examples), "run qopi-bot knowledge check"
    # The hash covers the examples, not the code that reads them: a changed normalizer or feature set
    # must retrain too, so the stored model must read every example as a fresh training does.
    fresh = train(training_examples(kb))
    for example in training_examples(kb):
        assert stored.predict(example.text).intent == fresh.predict(example.text).intent, example.text


def test_staff_fix_a_misread_by_adding_an_example(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    env = {"QOPI_KNOWLEDGE_DIR": str(folder)}
    phrasing = "is the sloth ledger something QCP wants from us?"
    [before] = ask(tmp_path, phrasing, env=env)
    assert before["intent"] != "attestation"

    path = folder / "examples" / "attestation.yaml"
    data = yaml.safe_load(path.read_text())
    data["examples"].append(phrasing)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    check = subprocess.run([str(CLI), "knowledge", "check"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                           env={**os.environ, **env})
    assert check.returncode == 0, check.stderr
    assert "retrained and saved" in check.stdout
    assert (folder / "intent-model.json").stat().st_size > 0

    [after] = ask(tmp_path, phrasing, env=env)
    assert after["intent"] == "attestation" and "ELIG-ATTESTATION" in after["rules"]
    again = subprocess.run([str(CLI), "knowledge", "check"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                           env={**os.environ, **env})
    assert "up to date" in again.stdout


def test_an_example_under_two_intents_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    path = folder / "examples" / "validity.yaml"
    data = yaml.safe_load(path.read_text())
    data["examples"].append("Can I get someone from QCP on the phone?")  # already a `human` example
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    check = subprocess.run([str(CLI), "knowledge", "check"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                           env={**os.environ, "QOPI_KNOWLEDGE_DIR": str(folder)})
    assert check.returncode == 1
    assert "validity.yaml" in check.stderr and "also listed in human.yaml" in check.stderr


def test_two_questions_in_one_message_are_both_answered(tmp_path: Path) -> None:
    [a] = ask(tmp_path, "what's the cutoff score? and how long is a score valid?")
    assert a["intent"] == "score_threshold" and a["outcome"] == "answered"
    assert {"ELIG-SCORE", "VALIDITY"} <= set(a["rules"])
    assert "75%" in a["text"] and "same season" in a["text"]
    [b] = ask(tmp_path, "2 sites, same P&Ps, one EMR and TIN, 81% in spring 2025 - can we apply, and do we apply together?")
    assert b["verdict"] == "eligible" and b["facts"]["entity"] == "one_entity"
    assert {"ELIG-SCORE", "ENTITY-PRACTICE"} <= set(b["rules"])


def test_pending_and_negated_conditions_decide(tmp_path: Path) -> None:
    waiting, halfway, loose = ask(
        tmp_path,
        "still waiting on the final report, our numbers show 88% for fall 2025. can we apply?",
        "we only got halfway through abstraction this round, can we still apply?",
        "three independent clinics, each with its own P&Ps - one application or three?",
    )
    assert waiting["verdict"] == "eligible_with_conditions" and "APPLY-AFTER-REPORT" in waiting["rules"]
    assert "final report not received yet" in waiting["text"]  # the facts it read are shown
    assert halfway["verdict"] == "not_eligible" and "ELIG-ABSTRACTION" in halfway["rules"]
    assert loose["outcome"] == "answered" and loose["facts"]["entity"] == "separate_entities"


def test_indirect_requests_for_staff_open_cases_and_site_descriptions_do_not(tmp_path: Path) -> None:
    answers = ask(tmp_path,
                  "the Cedar Park team wants to go for certification on their own",
                  "can we leave our new satellite clinic out of the certification?",
                  "a fire closed one clinic for two months - can QCP make an allowance?",
                  "can I get someone from QCP on the phone?",
                  "six clinics under one set of P&Ps - is each clinic certified on its own?")
    assert [a["outcome"] for a in answers[:4]] == ["escalated"] * 4
    assert all(a["case_id"] for a in answers[:4])
    assert [a["intent"] for a in answers[:4]] == ["subset", "subset", "exception", "human"]
    sites = answers[4]
    assert sites["intent"] == "multi_site" and sites["case_id"] is None and sites["facts"]["entity"] == "one_entity"


def test_signature_and_forwarding_numbers_are_never_scores(tmp_path: Path) -> None:
    email_style, slack_style = ask(
        tmp_path,
        "Hi QOPI team,\n\nCan we apply for certification?\n\nThanks,\nKaren Mills | Practice Manager\n614-555-0182 x204",
        "---------- Forwarded message ---------\nFrom: Dr. Patel\nSent: Monday 9:45\nSubject: 88\n\n"
        "see below from Dr. Patel - are we eligible?",
    )
    for answer in (email_style, slack_style):
        assert answer["outcome"] == "needs_info" and answer["missing"] == ["score"], answer
        assert "score" not in answer["facts"]


def test_answers_lead_with_the_verdict_and_keep_rule_ids_out_of_the_text(tmp_path: Path) -> None:
    [a] = ask(tmp_path, "We scored 81% on the certification pathway in Fall 2025. Can we apply?")
    first_line = a["text"].splitlines()[0]
    assert first_line.startswith("Yes, you are eligible to apply")
    assert "ELIG-" not in a["text"] and "VALIDITY" not in a["text"]
    assert len(a["text"].splitlines()) <= 6
    assert a["text"].splitlines()[-1] == "I read: 81%, Fall 2025, Certification Pathway."


def test_closing_thanks_gets_a_short_reply(tmp_path: Path) -> None:
    [a] = ask(tmp_path, "ok perfect, that's all, thx")
    assert a["intent"] == "greeting" and a["outcome"] == "answered"
    assert a["text"].startswith("You're welcome")


def test_two_close_readings_become_one_question(tmp_path: Path) -> None:
    # A knowledge base whose examples cannot tell "alpha score" apart: the bot asks instead of guessing.
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder, ignore=shutil.ignore_patterns("__pycache__", "*.py", "examples"))
    (folder / "intent-model.json").unlink()
    (folder / "examples").mkdir()
    (folder / "examples" / "sampling.yaml").write_text("intent: sampling\nexamples:\n- alpha charts beta\n")
    (folder / "examples" / "modules.yaml").write_text("intent: modules\nexamples:\n- alpha modules gamma\n")
    kb = load_knowledge(folder)
    u = understand("alpha score", dt.date(2026, 3, 1), kb)
    assert {u.intent, u.doubt} == {Intent.SAMPLING, Intent.MODULES}
    [a] = ask(tmp_path, "alpha score", env={"QOPI_KNOWLEDGE_DIR": str(folder)})
    assert a["outcome"] == "needs_info" and a["text"].startswith("I want to get this right: do you mean")
    assert "sampling" in a["text"] and "modules" in a["text"]


def test_a_stale_model_is_retrained_at_start_up(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (folder / "intent-model.json").unlink()
    kb = load_knowledge(folder)
    assert stored_model(kb) is None
    model = model_for(kb)
    assert model.source_hash == examples_hash(kb.examples)
    assert model.predict("can I talk to a person please?").intent == "human"
