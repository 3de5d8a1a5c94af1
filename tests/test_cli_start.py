"""`qopi-bot ask` starts light (issue 15): run as a process, it imports no channel code, web
framework, database layer, typer or pydantic-settings; its start-up caches give the same answers
and follow the knowledge folder; anything but a plain `ask` is still typer's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qopi_bot.main import parse_ask
from qopi_bot.settings import Settings, from_environment
from tests.conftest import QOPI_BOT, ROUNDS_FIXTURE

# Top-level packages a one-off `ask` has no use for.
HEAVY = {"typer", "click", "rich", "sqlalchemy", "alembic", "aiosqlite", "asyncpg", "aiohttp", "slack_bolt",
         "slack_sdk", "aiosmtpd", "aiosmtplib", "aioimaplib", "qopi_bot_handlers", "numpy", "jinja2",
         "structlog", "pydantic_settings", "dotenv", "html2text"}
QUESTION = "We scored 81% on the certification pathway in Fall 2025. Can we apply?"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'q.sqlite3'}",
           "XDG_CACHE_HOME": str(tmp_path / "cache"), **extra}
    for key in ("QOPI_ROUNDS_FILE", "QOPI_KNOWLEDGE_DIR", "QOPI_STARTUP_CACHE"):
        if key not in extra:
            env.pop(key, None)
    return env


def _ask(env: dict[str, str], *args: str) -> tuple[str, set[str]]:
    """The answer, and every module the process imported (from Python's own -X importtime)."""
    done = subprocess.run([sys.executable, "-X", "importtime", QOPI_BOT, "ask", "--json", *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    modules = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "qopi_bot.dialogue" in modules  # the import log really is this process's
    return done.stdout, modules


def test_ask_imports_nothing_heavy_and_its_caches_change_no_answer(tmp_path: Path) -> None:
    args = ("--today", "2026-03-01", "--rounds", str(ROUNDS_FIXTURE), QUESTION)
    first, first_modules = _ask(_env(tmp_path), *args)  # builds the caches
    second, second_modules = _ask(_env(tmp_path), *args)  # uses them
    uncached, _ = _ask(_env(tmp_path, QOPI_STARTUP_CACHE="0"), *args)
    assert first == second == uncached
    assert '"verdict": "eligible"' in first
    for modules in (first_modules, second_modules):
        assert not {m.split(".")[0] for m in modules} & HEAVY, sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert "yaml" not in second_modules  # the knowledge came from the cache, not the YAML files
    cached = {p.name.split("-")[0] for p in (tmp_path / "cache" / "qopi-bot").iterdir()}
    assert cached == {"regex", "knowledge"}


def test_the_cached_knowledge_reads_policies_as_the_folder_does(tmp_path: Path) -> None:
    # The cached Knowledge leaves out the example messages and hands over the decoded statement
    # model instead; a policy statement no pattern knows must read the same with the cache warm or off.
    args = ("--today", "2026-03-01", "--rounds", str(ROUNDS_FIXTURE),
            "Our second office is a joint venture with St. Anne's and runs on the hospital's policies, not ours. "
            "How does that affect how we apply for certification?")
    first, _ = _ask(_env(tmp_path), *args)
    second, second_modules = _ask(_env(tmp_path), *args)
    uncached, _ = _ask(_env(tmp_path, QOPI_STARTUP_CACHE="0"), *args)
    assert first == second == uncached
    assert '"entity": "separate_entities"' in first and "yaml" not in second_modules


def test_a_changed_knowledge_file_is_read_again(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(Path(__file__).resolve().parents[1] / "knowledge", folder,
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    env = _env(tmp_path, QOPI_KNOWLEDGE_DIR=str(folder))
    before, _ = _ask(env, "What's the phone number for the QOPI certification team?")
    assert "571-483-1669" in before
    contacts = folder / "contacts.yaml"
    contacts.write_text(contacts.read_text(encoding="utf-8").replace("571-483-1669", "571-483-1700"), encoding="utf-8")
    after, modules = _ask(env, "What's the phone number for the QOPI certification team?")
    assert "571-483-1700" in after and "571-483-1669" not in after
    assert "yaml" in modules  # read from the folder, not the cache
    broken = folder / "measures.yaml"
    broken.write_text("measures: [\n", encoding="utf-8")
    done = subprocess.run([QOPI_BOT, "ask", "hi"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "measures.yaml" in done.stderr and "not valid YAML" in done.stderr


def test_anything_but_a_plain_ask_is_left_to_typer(tmp_path: Path) -> None:
    assert parse_ask(["--json", "--today=2026-03-01", "hi"]) == {
        "question": "hi", "as_json": True, "today": "2026-03-01", "rounds": None, "conversation": None}
    for args in (["--help"], ["hi", "there"], ["--json", "--json", "hi"], ["--today"], ["--today", "--json"],
                 ["--", "-5"], ["--bogus", "hi"], ["--today=", "hi"]):
        assert parse_ask(args) is None, args
    env = _env(tmp_path)
    shown = subprocess.run([QOPI_BOT, "ask", "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "--conversation" in shown.stdout
    wrong = subprocess.run([QOPI_BOT, "ask", "--bogus", "hi"], env=env, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "--bogus" in wrong.stderr


def test_ask_reads_the_environment_as_the_settings_class_does(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("QOPI_", "SLACK_")) or name.upper() in ("DATABASE_URL", "PORT"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///x.sqlite3")
    monkeypatch.setenv("port", "8123")  # names are case-insensitive
    monkeypatch.setenv("QOPI_LOG_FORMAT", "JSON")
    monkeypatch.setenv("QOPI_SMTP_STARTTLS", "yes")
    monkeypatch.setenv("QOPI_STAFF_USERS", "U1, U2")
    monkeypatch.setenv("QOPI_IMAP_IDLE_SECONDS", "90.5")
    light = from_environment()
    assert light.model_dump() == Settings().model_dump()
    assert (light.port, light.log_format, light.smtp_starttls, light.imap_idle_seconds) == (8123, "json", True, 90.5)
    assert light.staff_user_ids == frozenset({"U1", "U2"})
