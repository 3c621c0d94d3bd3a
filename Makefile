# The course's two jobs: `make book` builds the Jupyter Book, `make test` runs the checks.
# Each first installs what it needs into .venv (torch pinned: it lies on the local disk).
# `make check` is the quick edit loop: lint and the library's tests, no chapters, no book.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: book test check lint diagrams install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

book: install
	$(BIN)/jupyter-book build . --warningiserror --keep-going

# Code, notebooks (as code) and the GitHub workflows (against GitHub's published schema)
lint: install
	$(BIN)/ruff check gentut tests book/diagrams
	$(BIN)/nbqa ruff notebooks --select F,E9 --ignore F401  # real errors: undefined names, syntax
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

check: lint
	$(BIN)/python -m pytest -q -m "not slow" tests

test: lint
	$(BIN)/python -m pytest --nbval tests notebooks

diagrams: install
	$(BIN)/python book/diagrams/draw.py

clean:
	rm -rf _build $(VENV)
