# Two commands do everything on a fresh machine: `make run` and `make test`.
# Both install what is missing first (scripts/bootstrap.sh).
SHELL := /bin/bash
VENV ?= .venv
STAMP := $(VENV)/.bootstrap-stamp

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml scripts/bootstrap.sh scripts/install-timescaledb.sh
	bash scripts/bootstrap.sh
	touch $(STAMP)

run: install
	$(VENV)/bin/hindsight dev

test: install
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check backend tests bench
	$(VENV)/bin/mypy backend/hindsight

bench: install
	$(VENV)/bin/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
