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
