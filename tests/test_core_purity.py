"""The core is pure: no I/O, clock, logging, database or channel imports."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "qopi_bot" / "core"
ALLOWED_TOP = {"__future__", "collections", "datetime", "typing", "pydantic", "qopi_bot", "decimal", "enum", "re"}
ALLOWED_PROJECT = ("qopi_bot.core", "qopi_bot.models")
FORBIDDEN_CALLS = {"open", "print", "input"}


def test_core_imports_only_pure_modules() -> None:
    for path in CORE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in ALLOWED_TOP, f"{path.name} imports {name}"
                if name.startswith("qopi_bot"):
                    assert name.startswith(ALLOWED_PROJECT), f"{path.name} imports {name}"


def test_core_never_reads_the_clock_or_does_io() -> None:
    for path in CORE.glob("*.py"):
        source = path.read_text()
        for banned in ("date.today(", "datetime.now(", "time.time(", ".utcnow(", "dt.date.today"):
            assert banned not in source, f"{path.name} reads the clock: {banned}"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in FORBIDDEN_CALLS, f"{path.name} calls {node.func.id}()"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_store_knows_nothing_of_dialogue_or_understanding() -> None:
    store_side = [CORE.parent / "store.py", CORE.parent / "schema.py", CORE.parent / "memory.py"]
    for path in store_side:
        bad = {n for n in _imports(path) if n.startswith(("qopi_bot.dialogue", "qopi_bot.understanding"))}
        assert not bad, f"{path.name} imports {bad}"


def test_channel_adapters_never_import_each_other() -> None:
    handlers = CORE.parents[1] / "handlers"
    for channel, other in (("slack", "email"), ("email", "slack")):
        for path in (handlers / channel).glob("*.py"):
            bad = {n for n in _imports(path) if n.startswith(f"qopi_bot_handlers.{other}")}
            assert not bad, f"{channel}/{path.name} imports {bad}"
    for path in (CORE.parent).rglob("*.py"):
        assert not {n for n in _imports(path) if n.startswith("qopi_bot_handlers")} or path.name == "cli.py", \
            f"{path} imports a channel adapter"
