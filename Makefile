# The course's two jobs: `make book` builds the Jupyter Book, `make test` runs the checks.
# Each first installs what it needs into .venv (torch pinned: it lies on the local disk).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: book test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

book: install
	$(BIN)/jupyter-book build . --warningiserror --keep-going

test: install
	$(BIN)/ruff check gentut tests
	$(BIN)/python -m pytest --nbval tests notebooks

clean:
	rm -rf _build $(VENV)
