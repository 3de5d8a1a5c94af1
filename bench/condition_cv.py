"""How well the condition model reads messages it has not seen (run on demand:
`python bench/condition_cv.py`). Leave one blind set out: train on the eligibility messages of
every other set in tests/data/blind_2026_11 and tests/data/phrasings*.jsonl, read the held-out
set, and print, per condition and score threshold, how many readings were right (precision)
and how many stated conditions were found (recall). qopi_bot/understanding/conditions.py's
MIN_SCORE comes from this table."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qopi_bot.core.kb import ConditionExample  # noqa: E402
from qopi_bot.knowledge import CONDITION_FACTS  # noqa: E402
from qopi_bot.understanding.conditions import fit  # noqa: E402
from qopi_bot.understanding.normalize import normalize  # noqa: E402

# The rule each condition fails or defers, and the verdict it gives (the sets' expectations).
RULES = {"no_round": ("not_eligible", "ELIG-ROUND"), "abstraction_incomplete": ("not_eligible", "ELIG-ABSTRACTION"),
         "other_track": ("not_eligible", "ELIG-PATHWAY"), "sampling_not_followed": ("not_eligible", "ELIG-SAMPLING"),
         "charts_left_out": ("eligible_with_conditions", "ELIG-ATTESTATION"),
         "report_pending": ("eligible_with_conditions", "APPLY-AFTER-REPORT")}
THRESHOLDS = (-0.2, -0.1, 0.0, 0.1, 0.2, 0.3)


def examples_by_set() -> dict[str, list[ConditionExample]]:
    found: dict[str, list[ConditionExample]] = defaultdict(list)
    files = sorted((ROOT / "tests/data/blind_2026_11").glob("*.jsonl")) + sorted((ROOT / "tests/data").glob("phrasings*.jsonl"))
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            case = json.loads(line) if line.strip() else {}
            expect = case.get("expect", {})
            verdict = expect.get("verdict")
            if not verdict or isinstance(verdict, list) or case.get("conversation"):
                continue
            states = tuple(c for c, (v, rule) in RULES.items() if v == verdict and rule in expect.get("rules", []))
            found[path.stem].append(ConditionExample(text=case["text"], states=states))
    return found


def main() -> None:
    sets = examples_by_set()
    scored: list[tuple[str, float, bool]] = []
    for held_out in sets:
        training = tuple(e for name, group in sets.items() if name != held_out for e in group)
        model = fit(training)
        for example in sets[held_out]:
            for name, score in model.scores(normalize(example.text)).items():
                scored.append((name, score, name in example.states))
    print(f"{sum(len(g) for g in sets.values())} eligibility messages in {len(sets)} sets, each set read by a model "
          "trained on the others")
    print(f"{'condition':24}{'threshold':>10}{'read':>6}{'right':>7}{'precision':>11}{'recall':>8}")
    for name in CONDITION_FACTS:
        rows = [(s, y) for n, s, y in scored if n == name]
        stated = sum(y for _, y in rows)
        for threshold in THRESHOLDS:
            read = [y for s, y in rows if s > threshold]
            right = sum(read)
            print(f"{name:24}{threshold:>10.1f}{len(read):>6}{right:>7}{right / max(1, len(read)):>11.2f}"
                  f"{right / max(1, stated):>8.2f}")


if __name__ == "__main__":
    main()
