# Two commands do everything on a fresh machine: `make demo` (the main job) and `make test`.
# Both create .venv and install the project first (torch 2.13.0 before anything else, then the
# rest under constraints.txt so no later install replaces it).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TARGET ?= latency<10ms

.PHONY: install data demo test test-slow lint typecheck check experiments clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,ray,openvino]"
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST, the default data set, from Debian's package (the four idx files land in
# /usr/share/datasets/fashion-mnist); NAS_FASHION_MNIST=DIR points at a copy of your own instead.
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
data:
	@if [ -n "$$NAS_FASHION_MNIST" ] || [ -f $(FASHION_MNIST) ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "Fashion-MNIST is missing and apt-get is not available: set NAS_FASHION_MNIST to a directory with its four idx files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)" >&2; exit 2; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else \
		echo "Fashion-MNIST is missing: run 'apt-get install dataset-fashion-mnist' as root, or set NAS_FASHION_MNIST to a directory with its four idx files" >&2; exit 2; fi; \
	echo "installing Debian's dataset-fashion-mnist (30 MB)"; \
	$$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -qq >/dev/null && $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; } || \
		{ echo "could not install dataset-fashion-mnist with apt-get: install it by hand, or set NAS_FASHION_MNIST to a directory with its four idx files" >&2; exit 2; }

demo: $(STAMP) data
	$(BIN)/nas search --target "$(TARGET)"

test: $(STAMP) data
	$(BIN)/python -m pytest

test-slow: $(STAMP) data
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

check: lint test

experiments: $(STAMP)
	$(BIN)/python experiments/space_range.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
