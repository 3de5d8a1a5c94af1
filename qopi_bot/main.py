"""The `qopi-bot` entry point: a plain `ask` starts without typer; everything else goes to qopi_bot.cli.

Building the typer app (and typer's pydantic-based coercion of every parameter) costs more than
answering a question, so an `ask` whose arguments are unambiguous is parsed here, with exactly
the meaning typer gives them, and run by the same code (qopi_bot.ask_cli). Anything else --
`--help`, an unknown or repeated option, `--`, a second argument, a value that looks like an
option -- is left to typer, so its help text and error messages stay the only ones."""

from __future__ import annotations

import sys

_VALUE_OPTIONS = {"--today": "today", "--rounds": "rounds", "--conversation": "conversation"}


def parse_ask(args: list[str]) -> dict[str, object] | None:
    """Keyword arguments for ask_cli.ask, or None when typer should parse these arguments."""
    found: dict[str, object] = {"question": None, "as_json": False, "today": None, "rounds": None, "conversation": None}
    seen: set[str] = set()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--json":
            name, value = "as_json", True
        elif arg.startswith("-") and arg != "-":
            option, eq, inline = arg.partition("=")
            if option not in _VALUE_OPTIONS:
                return None
            if not eq:
                i += 1
                if i == len(args):
                    return None
                inline = args[i]
            if not inline or inline.startswith("-"):
                return None
            name, value = _VALUE_OPTIONS[option], inline
        else:
            name, value = "question", arg
        if name in seen:
            return None
        seen.add(name)
        found[name] = value
        i += 1
    return found


def main() -> None:
    argv = sys.argv[1:]
    parsed = parse_ask(argv[1:]) if argv[:1] == ["ask"] else None
    if parsed is None:
        from qopi_bot.cli import main as typer_main

        typer_main()
        return
    import os

    if parsed["question"] is not None:
        # One question, then the process exits: Python's cycle collector would only rescan the
        # objects the imports create (~7% of a cold start). A stream keeps it, as it may run long.
        import gc

        gc.disable()
    # pydantic looks for plugins (observability hooks; this project uses none) by scanning
    # every installed distribution's entry points when the first model is built: ~5 ms of a
    # one-off answer. Set PYDANTIC_DISABLE_PLUGINS yourself (even empty) to choose otherwise.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from qopi_bot import regex_cache

    regex_cache.preload()
    from qopi_bot.ask_cli import ask

    try:
        ask(**parsed)  # type: ignore[arg-type]
    finally:
        regex_cache.save()


if __name__ == "__main__":
    main()
