# `make run` and `make test` each work on a fresh machine: they create .venv when it is missing,
# install facerep into it with pip, then run the main job or the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.facerep-installed

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install -e '.[test,detect]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/facerep plugins
	$(BIN)/facerep run recipes/demo.yaml --out runs/demo --resume
	$(BIN)/facerep bench runs/demo --out runs/demo/bench
	$(BIN)/facerep bench runs/demo --benchmark aflw2000 --out runs/demo/bench
	$(BIN)/facerep bench runs/demo --benchmark verification --out runs/demo/bench

EXAMPLE := examples/facerep-plugin-example

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -x -q
	$(BIN)/pip install --no-deps --no-build-isolation -q ./$(EXAMPLE)
	$(BIN)/python -m pytest -x -q $(EXAMPLE)/tests

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info
