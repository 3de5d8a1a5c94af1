"""Runs a phrasing set (public-eval case format) through the installed CLI, as the shared
scorer does: one `qopi-bot ask --json` process fed every case on stdin in file order, so
cases sharing a `conversation` form one thread; answers checked with the scorer's rules."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
ROUNDS_ARG = "tests/data/rounds_fixture.yaml"  # relative to ROOT, the process's cwd
CLI = Path(sys.executable).parent / "qopi-bot"
INTENTS = {
    "eligibility", "score_threshold", "validity", "application", "multi_site", "subset",
    "exception", "sampling", "attestation", "modules", "measures", "standards", "contact",
    "human", "greeting", "out_of_scope",
}


def load_cases(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _accepted(value: Any, expected: Any) -> bool:
    return value in expected if isinstance(expected, list) else value == expected


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, bool) or isinstance(a, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) < 1e-6
    return a == b


def check(answer: dict[str, Any], expect: dict[str, Any]) -> list[str]:
    bad = []
    for key in ("intent", "outcome", "verdict"):
        if key in expect and not _accepted(answer.get(key), expect[key]):
            bad.append(f"{key}: got {answer.get(key)!r}, want {expect[key]!r}")
    rules = answer.get("rules") or []
    bad += [f"rules: {r} missing from {rules}" for r in expect.get("rules", []) if r not in rules]
    facts = answer.get("facts") or {}
    for key, want in expect.get("facts", {}).items():
        if key not in facts or not _same(facts[key], want):
            bad.append(f"facts.{key}: got {facts.get(key, '<absent>')!r}, want {want!r}")
    missing = answer.get("missing") or []
    bad += [f"missing: {n} not in {missing}" for n in expect.get("missing", []) if n not in missing]
    for pattern in expect.get("text", []):
        if not re.search(pattern, answer.get("text") or "", re.I):
            bad.append(f"text: /{pattern}/ not found in {(answer.get('text') or '')[:160]!r}")
    if "case" in expect and (answer.get("case_id") not in (None, "")) != expect["case"]:
        bad.append(f"case_id: got {answer.get('case_id')!r}, want {'a case' if expect['case'] else 'none'}")
    return bad


def run_cli(cases: list[dict[str, Any]], db_path: Path) -> list[str]:
    feed = [json.dumps({"text": c["text"], "conversation": c.get("conversation", c["id"]),
                        **({"today": c["today"]} if c.get("today") else {})}) for c in cases]
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}"}
    env.pop("QOPI_ROUNDS_FILE", None)
    proc = subprocess.run([str(CLI), "ask", "--json", "--rounds", ROUNDS_ARG], input="\n".join(feed) + "\n",
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    out = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(out) == len(cases), f"expected {len(cases)} answer lines, got {len(out)} (exit {proc.returncode})\n{proc.stderr[-2000:]}"
    return out


def failures(cases: list[dict[str, Any]], out: list[str]) -> list[str]:
    found = []
    for case, raw in zip(cases, out):
        try:
            answer = json.loads(raw)
        except json.JSONDecodeError:
            answer = {}
        bad = check(answer, case.get("expect", {})) if answer else ["answer is not JSON: " + raw[:120]]
        if bad:
            found.append(f"{case['id']} {case['text'][:70]!r}\n    " + "\n    ".join(bad))
    return found
