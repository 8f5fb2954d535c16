# Two entry points, each of which sets up everything it needs on a fresh machine:
#   make run   - build the environment, then encode the embedded default data set (ELPV) and
#                print what was encoded and how fast
#   make test  - build the environment, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test bench clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,book]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lowdata encode

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/embed.py

clean-venv:
	rm -rf $(VENV)
