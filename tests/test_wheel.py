"""The built wheel carries knowledge/ and the migrations: the bot works without the source tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_answers_without_the_source_tree(tmp_path: Path) -> None:
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(wheels.glob("qopi_bot-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    script = (
        "import json, qopi_bot, qopi_bot_knowledge, sys\n"
        "from qopi_bot.cli import main\n"
        "print(json.dumps([qopi_bot.__file__, qopi_bot_knowledge.__file__]), file=sys.stderr)\n"
        "sys.argv = ['qopi-bot', 'ask', '--json', '--conversation', 'w1', 'What score do we need to be eligible?']\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'w.sqlite3'}"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    paths = json.loads(done.stderr.strip().splitlines()[0])
    assert all(p.startswith(str(target)) for p in paths), paths  # really the wheel's copy
    answer = json.loads(done.stdout)
    assert answer["facts"]["threshold"] == 75 and "ELIG-SCORE" in answer["rules"]
    # What the understanding learns from ships with the models trained on it.
    knowledge = target / "qopi_bot_knowledge"
    assert (knowledge / "statements" / "same_policies.yaml").is_file() and (knowledge / "statement-model.json").is_file()
    assert len(list((knowledge / "examples").glob("*.yaml"))) >= 16 and (knowledge / "intent-model.json").is_file()
    # The staff console's templates and static files ship too.
    console = target / "qopi_bot_handlers" / "console"
    assert {"base.html", "queue.html", "case.html", "answers.html", "teaching.html", "charts.html"} <= \
        {p.name for p in (console / "templates").iterdir()}
    assert (console / "static" / "console.css").is_file() and (console / "static" / "console.js").is_file()
