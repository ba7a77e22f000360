# Two commands do everything on a fresh machine: `make demo` (the main job) and `make test`.
# Both create .venv and install the project first (torch 2.13.0 before anything else, then the
# rest under constraints.txt so no later install replaces it).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TARGET ?= latency<10ms

.PHONY: install demo test test-slow lint typecheck check experiments clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nas search --target "$(TARGET)"

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

check: lint test

experiments: $(STAMP)
	$(BIN)/python experiments/space_range.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
