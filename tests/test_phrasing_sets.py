"""Our phrasing sets, in the public eval's format, run through the installed CLI.

- phrasings.jsonl (215): written for this project across every intent, with 35 threads.
- phrasings_holdout.jsonl (120), phrasings_holdout2.jsonl (100), phrasings_blind3.jsonl (100),
  phrasings_blind4.jsonl (80, a month of realistic help-desk traffic): each written blind, without
  seeing the bot or the earlier sets. On first contact they passed 101/120 (84.2%), 79/100
  (79.0%), 86/100 (86.0%) and 73/80 (91.2%) -- each measured after the earlier ones were fixed,
  so the last is the best estimate of how the bot does on unseen phrasing. Every miss was fixed
  as a general rule, so they are now regression sets and every case must pass.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.phrasing_sets import CLI, INTENTS, failures, load_cases, run_cli

SETS = {  # file -> (minimum cases, minimum multi-turn threads, every intent expected on its own)
    "phrasings.jsonl": (150, 25, True),
    "phrasings_holdout.jsonl": (120, 20, True),
    "phrasings_holdout2.jsonl": (100, 15, True),
    "phrasings_blind3.jsonl": (100, 15, False),  # score_threshold appears only beside eligibility
    "phrasings_blind4.jsonl": (80, 12, False),  # a traffic mix: not every intent stands alone
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_set_shape(name: str) -> None:
    cases = load_cases(name)
    min_cases, min_threads, every_intent_alone = SETS[name]
    assert len(cases) >= min_cases
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert all(c.get("today") and "text" in c and isinstance(c.get("expect"), dict) for c in cases)
    threads = Counter(c["conversation"] for c in cases if c.get("conversation"))
    multi = [conv for conv, n in threads.items() if n >= 2]
    assert len(multi) >= min_threads
    order = [c.get("conversation") for c in cases if c.get("conversation")]
    for conv in multi:  # a thread's turns are contiguous, so it reads in order
        first, last = order.index(conv), len(order) - 1 - order[::-1].index(conv)
        assert order[first:last + 1] == [conv] * threads[conv], f"thread {conv} is interleaved"
    expected = [c["expect"].get("intent") for c in cases if c["expect"].get("intent")]
    named = {i for e in expected for i in (e if isinstance(e, list) else [e])}
    assert named <= INTENTS, named - INTENTS
    alone = {e for e in expected if isinstance(e, str)}
    assert INTENTS <= (alone if every_intent_alone else named), "every intent is covered"


@pytest.mark.parametrize("name", sorted(SETS))
def test_set_against_cli(name: str, tmp_path: Path) -> None:
    assert CLI.exists(), f"qopi-bot is not installed next to the test interpreter ({CLI})"
    cases = load_cases(name)
    failed = failures(cases, run_cli(cases, tmp_path / "phrasings.sqlite3"))
    assert not failed, f"{len(failed)}/{len(cases)} cases of {name} failed:\n" + "\n".join(failed)


# Blind sets written for the understanding rework (issue 16) by authors who saw neither the code nor
# the other sets, each scored once on first contact (README: B 68, D 80, C 85, A 84, E 83, then
# I 86, G 86, H 84, F 83, J 93, L 85, M 90, K 92, O 92, N 86, P 94, Q 93, R 89, S 95, T 92, U 96,
# V 90, W 90, X 97, Y 95 of 100), then kept here. A few of their expectations are judgement calls the
# contract leaves open, so they are a ratchet, not a 100% gate: the count of passing cases may never
# fall below what the understanding has reached.
BLIND_2026_11 = {"set_a.jsonl": 100, "set_b.jsonl": 100, "set_c.jsonl": 100, "set_d.jsonl": 100, "set_e.jsonl": 100,
                 "set_f.jsonl": 99, "set_g.jsonl": 100, "set_h.jsonl": 100, "set_i.jsonl": 100, "set_j.jsonl": 100,
                 "set_k.jsonl": 100, "set_l.jsonl": 100, "set_m.jsonl": 100, "set_n.jsonl": 100, "set_o.jsonl": 100,
                 "set_p.jsonl": 100, "set_q.jsonl": 100, "set_r.jsonl": 100, "set_s.jsonl": 100, "set_t.jsonl": 99,
                 "set_u.jsonl": 100, "set_v.jsonl": 98, "set_w.jsonl": 96, "set_x.jsonl": 100, "set_y.jsonl": 99,
                 "set_z1.jsonl": 98, "set_z2.jsonl": 100, "set_z3.jsonl": 100, "set_z4.jsonl": 100,
                 "set_z5.jsonl": 100, "set_z6.jsonl": 97, "set_z7.jsonl": 100, "set_z8.jsonl": 100,
                 "set_z9.jsonl": 100, "set_z10.jsonl": 100, "set_z11.jsonl": 100, "set_z12.jsonl": 100,
                 "set_z13.jsonl": 98, "set_z14.jsonl": 99, "set_z15.jsonl": 100, "set_z16.jsonl": 99,
                 "set_z17.jsonl": 96, "set_z18.jsonl": 94, "set_z19.jsonl": 100, "set_z20.jsonl": 100,
                 "set_z21.jsonl": 100, "set_z22.jsonl": 100, "set_z23.jsonl": 100, "set_z24.jsonl": 100,
                 "set_z25.jsonl": 100, "set_z26.jsonl": 100, "set_z27.jsonl": 100, "set_z28.jsonl": 100,
                 "set_z29.jsonl": 100, "set_z30.jsonl": 100, "set_z31.jsonl": 100, "set_z32.jsonl": 100,
                 "set_z33.jsonl": 100, "set_z34.jsonl": 100, "set_z35.jsonl": 100, "set_z36.jsonl": 100,
                 "set_z37.jsonl": 99, "set_z38.jsonl": 100, "set_z39.jsonl": 100, "set_z40.jsonl": 99,
                 "set_z41.jsonl": 99, "set_z42.jsonl": 99, "set_z43.jsonl": 99, "set_z44.jsonl": 100,
                 "set_z45.jsonl": 99, "set_z46.jsonl": 100, "set_z47.jsonl": 99, "set_z48.jsonl": 100}


@pytest.mark.parametrize("name", sorted(BLIND_2026_11))
def test_blind_sets_keep_their_score(name: str, tmp_path: Path) -> None:
    cases = load_cases(f"blind_2026_11/{name}")
    assert len(cases) == 100
    failed = failures(cases, run_cli(cases, tmp_path / "blind.sqlite3"))
    passed = len(cases) - len(failed)
    assert passed >= BLIND_2026_11[name], f"{name}: {passed}/100 pass, was {BLIND_2026_11[name]}:\n" + "\n".join(failed)
