"""Loaded knowledge kept between `qopi-bot ask` runs, keyed by the content of every knowledge file.

Reading knowledge/*.yaml, validating it and decoding the stored intent model is about a tenth
of a one-off `ask`. The result depends only on those files and on the code that reads them, so
it is stored (pickled) under a key made of both: the name, size, modification time and inode of every
.yaml/.txt/.json file in the folder and of the rounds file in use (what the running processes'
live reload looks at too, and what Python's own bytecode cache trusts), and a hash of the loading
code's source. Staff still edit only YAML: a changed file gives a new key, and the next run
reads the folder again -- including its checks, so a broken file is reported
exactly as before (failures are never stored).

Only `ask` uses this (runtime.open_cli_runtime); `knowledge check`, `chat` and the long-running
processes read the folder every time."""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from array import array
from pathlib import Path
from typing import Any

from qopi_bot import startup_cache
from qopi_bot.core.kb import Knowledge
from qopi_bot.knowledge import knowledge_dir, load_knowledge
from qopi_bot.understanding.classifier import IntentModel

_KEEP = 4  # cache files kept: a few knowledge folders (tests, staging copies) need not evict each other
# The modules whose code decides what a loaded Knowledge (and its intent model) looks like.
_CODE_MODULES = ("qopi_bot.knowledge", "qopi_bot.core.kb", "qopi_bot.models", "qopi_bot.understanding.classifier",
                 "qopi_bot.understanding.model_store", "qopi_bot.understanding.statements",
                 "qopi_bot.understanding.conditions", __name__)


def _code_key() -> str:
    import pydantic

    digest = hashlib.sha256(f"{sys.version}|{pydantic.VERSION}|{pickle.HIGHEST_PROTOCOL}".encode())
    for name in _CODE_MODULES:
        __import__(name)
        digest.update(Path(sys.modules[name].__file__ or "").read_bytes())
    return digest.hexdigest()[:12]


def _files(folder: str) -> list[tuple[str, int, int, int]]:
    """(path, size, mtime, inode) of every file load_knowledge may read (knowledge_version's set), like
    the live reload looks at the folder: cheap, no file is read."""
    found: list[tuple[str, int, int, int]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                found += _files(entry.path)
            elif entry.name.endswith((".yaml", ".yml", ".txt", ".json")):
                st = entry.stat()
                found.append((entry.path, st.st_size, st.st_mtime_ns, st.st_ino))
    return found


def _inputs_key(directory: Path | None, rounds_file: Path | None) -> str:
    inputs: list[Any] = sorted(_files(str(directory or knowledge_dir())))
    if rounds_file is not None:
        st = rounds_file.stat()
        inputs.append((str(rounds_file.resolve()), st.st_size, st.st_mtime_ns, st.st_ino))
    return hashlib.sha256(repr(inputs).encode()).hexdigest()[:16]


def _model_parts(model: IntentModel) -> tuple[Any, ...]:
    # What IntentModel.from_json passes to the constructor, in forms pickle reads fast: the terms as
    # one string and the weights as raw doubles, not tens of thousands of small objects.
    return (model.labels, "\n".join(model.vocab), array("d", model.idf).tobytes(), model.weights.tobytes(), model.bias,
            model.source_hash)


def _model(parts: tuple[Any, ...]) -> IntentModel:
    labels, terms, idf_bytes, weights, bias, source_hash = parts
    flat = array("f")
    flat.frombytes(weights)
    idf = array("d")
    idf.frombytes(idf_bytes)
    vocab = terms.split("\n") if terms else []
    return IntentModel(labels, dict(zip(vocab, range(len(vocab)))), idf, flat, bias, source_hash)


def load(directory: Path | None, rounds_file: Path | None) -> Knowledge:
    """The same Knowledge load_knowledge(directory, rounds_file) returns, from the cache when it can."""
    if not startup_cache.enabled():
        return load_knowledge(directory, rounds_file)
    from qopi_bot.understanding import conditions, model_store, statements
    from qopi_bot.understanding.classifier import examples_hash

    try:
        key = f"{_inputs_key(directory, rounds_file)}-{_code_key()}"
        target = startup_cache.cache_dir() / f"knowledge-{key}.pickle"
    except OSError:
        return load_knowledge(directory, rounds_file)
    try:
        kb, examples_key, parts, statement_parts, condition_json = pickle.loads(target.read_bytes())  # noqa: S301 (our own cache file)
        if isinstance(kb, Knowledge):
            if condition_json is not None:
                # Decoded on first use only: most runs ask nothing the condition model reads.
                conditions.remember(kb, lambda: IntentModel.from_json(condition_json))
            if parts is not None:
                # What model_store.model_for(kb) would find (and remember) itself: the stored
                # model for these examples, without re-hashing 600+ examples.
                model = model_store._CACHE.setdefault(examples_key, _model(parts))
                model_store._BY_KB[id(kb)] = (kb, model)
            if statement_parts is not None:
                statements.remember_lazily(kb, {fact: (lambda p=p: _model(p)) for fact, p in statement_parts.items()})
            return kb
    except Exception:  # missing, damaged or from other code: read the folder
        pass
    kb = load_knowledge(directory, rounds_file)
    try:
        # The intent model is stored only when it is the one in knowledge/intent-model.json and
        # matches the examples (model_store would load it as is); otherwise it is trained per run.
        # (This leans on model_store's memo dicts: should they change, the cache is simply not used.)
        examples_key = examples_hash(kb.examples)
        model = model_store.stored_model(kb)
        if model is None or model.source_hash != examples_key:
            model = None
        else:
            model_store._CACHE.setdefault(examples_key, model)
            model_store._BY_KB[id(kb)] = (kb, model)
        parts = _model_parts(model) if model is not None else None
        stored_statements = statements.stored_models(kb)
        statement_parts = {fact: _model_parts(m) for fact, m in stored_statements.items()} if stored_statements is not None else None
        # With the decoded models stored beside it, neither the models' JSON text (megabytes) nor the
        # thousands of example messages they were trained on are needed again: model_for(kb) and
        # statements.model(kb, ...) find the models in their memos. (Unpickling the examples alone
        # took 7 ms of every `ask`.)
        condition_json = conditions.stored_model_json(kb)
        update: dict[str, Any] = {}
        if condition_json is not None:  # kept beside the Knowledge, decoded when first needed
            update |= {"condition_examples": (), "condition_model_json": None}
        if parts is not None:
            update |= {"intent_model_json": None, "examples": ()}
        if statement_parts is not None:
            update |= {"statement_model_json": None, "statement_examples": ()}
        stored_kb = kb.model_copy(update=update) if update else kb
        startup_cache.write_atomically(target, pickle.dumps((stored_kb, examples_key, parts, statement_parts, condition_json),
                                                            protocol=pickle.HIGHEST_PROTOCOL))
        # Earlier contents of the folder (or other folders in use): the newest few are kept.
        stale = sorted(target.parent.glob("knowledge-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in stale[_KEEP:]:
            old.unlink(missing_ok=True)
    except Exception:  # a read-only home, a full disk: the next run reads the folder again
        pass
    return kb
