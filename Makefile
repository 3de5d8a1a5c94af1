# Two commands a new machine needs:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BOT    := $(VENV)/bin/qopi-bot
SHARED ?= ../shared

.PHONY: install demo chat test eval bench clean

install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,postgres]'
	@touch $@

demo: install  ## install, then ask the bot a first question on its embedded defaults (SQLite)
	$(BOT) ask "What score do we need to be eligible for QOPI certification?"
	$(BOT) ask "We scored 81% on the certification pathway in Fall 2025. Can we apply?"
	@echo; echo "Try: $(BOT) chat"

chat: install
	$(BOT) chat

test: install  ## the whole suite (unit, CLI, Slack, email, PostgreSQL), then the public eval
	$(PY) -m pytest -q -p no:cacheprovider
	@$(MAKE) --no-print-directory eval

eval: install  ## the shared public question set, 44/44 required
	@if [ -f "$(SHARED)/eval/score.py" ]; then \
	  db=$$(mktemp -d); DATABASE_URL="sqlite+aiosqlite:///$$db/eval.sqlite3" \
	  $(PY) $(SHARED)/eval/score.py $(SHARED)/eval/public.jsonl --rounds $(SHARED)/eval/rounds.yaml --cmd "$(BOT) ask --json"; \
	  status=$$?; rm -rf $$db; exit $$status; \
	elif [ -n "$$CI" ]; then echo "eval: $(SHARED)/eval is missing in CI" >&2; exit 1; \
	else echo "eval: $(SHARED)/eval not found beside the repo; skipped (set SHARED=...)"; fi

bench: install  ## benchmarks, on demand; each prints ratios against a baseline measured in the same run
	$(PY) bench/bench_core.py
	@for b in bench/bench_slack.py bench/bench_email.py bench/bench_imap.py bench/bench_scale.py; do [ -f $$b ] && $(PY) $$b || true; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
