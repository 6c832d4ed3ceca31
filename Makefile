PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
#: Every package `make install` installs, pinned with hashes; `make lock` writes it from pyproject.toml.
LOCK := requirements.lock
#: `make lock PIP_COMPILE_FLAGS=--upgrade` moves every pin to the newest release pyproject.toml allows.
PIP_COMPILE_FLAGS ?=

.PHONY: install lock run test lint bench clean-sessions export-schema graphiql-assets

install: $(STAMP)

# The lock's exact packages (each checked against its hash), then the project itself, built with the
# lock's setuptools and without dependencies.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# After a change to the dependencies in pyproject.toml: pins what is new, keeps the other pins.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/pip-compile || $(BIN)/python -m pip install --quiet "pip-tools>=7.4"
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --extra test --extra dev \
		--no-emit-index-url --no-emit-find-links $(PIP_COMPILE_FLAGS) --output-file $(LOCK) pyproject.toml

run: install
	$(BIN)/python -m server

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy server schema models tests bench

export-schema: install
	$(BIN)/python -m server export-schema --output schema.graphql

clean-sessions: install
	$(BIN)/python -m server clean-sessions

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/propagation.py
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.login_storm

# GraphiQL, React and ReactDOM at the versions pinned in server/playground/sources.json, from the npm registry.
graphiql-assets: install
	$(BIN)/python -m server.playground.refresh
