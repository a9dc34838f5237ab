# Two commands do everything on a fresh machine: `make run` and `make test`.
# Both install what is missing first (scripts/bootstrap.sh).
SHELL := /bin/bash
VENV ?= .venv
STAMP := $(VENV)/.bootstrap-stamp

.PHONY: install run test lint bench clean docs

TRACKER := tracker/dist/manifest.json
DASHBOARD_ASSETS := dashboard/static/dist/rrweb-replay.js

install: $(STAMP) $(TRACKER) $(DASHBOARD_ASSETS)

$(STAMP): setup.cfg pyproject.toml scripts/bootstrap.sh scripts/install-timescaledb.sh
	bash scripts/bootstrap.sh
	touch $(STAMP)

# tracker.js (git-ignored build in tracker/dist/): rebuilt when its sources or lock file change.
tracker/node_modules/.package-lock.json: tracker/package-lock.json
	cd tracker && npm ci --no-audit --no-fund --loglevel=error

$(TRACKER): tracker/node_modules/.package-lock.json tracker/build.mjs $(wildcard tracker/src/*.js tracker/bench/*.js)
	cd tracker && npm run --silent build

# The dashboard's replayer (rrweb, git-ignored build in dashboard/static/dist/): rebuilt when
# its lock file or build script change.
dashboard/node_modules/.package-lock.json: dashboard/package-lock.json
	cd dashboard && npm ci --no-audit --no-fund --loglevel=error

$(DASHBOARD_ASSETS): dashboard/node_modules/.package-lock.json dashboard/build.mjs
	cd dashboard && npm run --silent build

run: install
	$(VENV)/bin/hindsight dev

# The suite starts with the linters (Python and JavaScript), so CI runs them too.
test: install lint
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check backend tests bench
	$(VENV)/bin/mypy backend/hindsight
	cd tracker && npm run --silent lint
	cd dashboard && npm run --silent lint

# README's settings table is generated from backend/hindsight/settings.py.
docs: install
	$(VENV)/bin/python -m hindsight.settings README.md

bench: install
	$(VENV)/bin/python bench/ingest.py
	$(VENV)/bin/python bench/tracker.py
	$(VENV)/bin/python bench/recording.py
	$(VENV)/bin/python bench/dashboard.py
	$(VENV)/bin/python bench/stats.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
