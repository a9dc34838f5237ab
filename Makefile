# Two commands do everything on a fresh machine: `make run` and `make test`.
# Both install what is missing first (scripts/bootstrap.sh).
SHELL := /bin/bash
VENV ?= .venv
STAMP := $(VENV)/.bootstrap-stamp

.PHONY: install run test lint bench clean

TRACKER := tracker/dist/manifest.json

install: $(STAMP) $(TRACKER)

$(STAMP): setup.cfg pyproject.toml scripts/bootstrap.sh scripts/install-timescaledb.sh
	bash scripts/bootstrap.sh
	touch $(STAMP)

# tracker.js (git-ignored build in tracker/dist/): rebuilt when its sources or lock file change.
tracker/node_modules/.package-lock.json: tracker/package-lock.json
	cd tracker && npm ci --no-audit --no-fund --loglevel=error

$(TRACKER): tracker/node_modules/.package-lock.json tracker/build.mjs $(wildcard tracker/src/*.js tracker/bench/*.js)
	cd tracker && npm run --silent build

run: install
	$(VENV)/bin/hindsight dev

test: install
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check backend tests bench
	$(VENV)/bin/mypy backend/hindsight

bench: install
	$(VENV)/bin/python bench/ingest.py
	$(VENV)/bin/python bench/tracker.py
	$(VENV)/bin/python bench/dashboard.py
	$(VENV)/bin/python bench/stats.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
