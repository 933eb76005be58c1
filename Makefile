# One entry point: `make dev` runs the whole system locally, `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.12; the virtualenv and `sam build` use the same interpreter.
PYTHON_VERSION := 3.12
# First interpreter that really runs: PATH, then pyenv, then pyenv's default folder.
PYTHON ?= $(shell for c in "$$(command -v python$(PYTHON_VERSION))" \
	"$$(pyenv prefix $(PYTHON_VERSION) 2>/dev/null)/bin/python$(PYTHON_VERSION)" \
	$$HOME/.pyenv/versions/$(PYTHON_VERSION).*/bin/python$(PYTHON_VERSION); do \
	[ -n "$$c" ] && "$$c" -c 'import sys' >/dev/null 2>&1 && { echo "$$c"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Locks with hashes, written by `make lock` from pyproject.toml's ranges: .venv installs the dev lock,
# `sam build` installs the layer's (pip checks every hash of a file that has them all).
DEV_LOCK := requirements/dev.lock
LAYER_LOCK := layers/shared/requirements.txt
# The functions' platform (template.yaml): Lambda's python3.12 on arm64, Amazon Linux 2023 (glibc 2.34).
LAYER_PLATFORM := aarch64-manylinux_2_34
# PyPI only, whatever index the machine's configuration adds: the hashes recorded are PyPI's.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --no-config --default-index https://pypi.org/simple \
	--python-version $(PYTHON_VERSION) --generate-hashes --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)
# The local EVM node (anvil) of the wallet-sync tests and `make dev`, pinned with solc in
# local_stack/evm/package-lock.json; installed there by npm, never taken from the machine.
ANVIL := local_stack/evm/node_modules/.bin/anvil

.PHONY: help install lock audit test test-faults lint dev dev-regions token openapi bench build validate clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(DEV_LOCK)
	@test -n "$(PYTHON)" || { echo "python$(PYTHON_VERSION) not found: install it or set PYTHON=/path/to/python$(PYTHON_VERSION)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP) ## Create .venv with the project and its dev tools, exactly as requirements/dev.lock pins them

# Existing pins are kept where the ranges still allow them; UPGRADE=1 takes the newest of every range.
# The dev lock is resolved first (runtime, dev tools and the build backend together, for every platform),
# then the layer's from it, so the layer ships the versions the tests ran against.
lock: $(STAMP) ## Re-resolve both locks from pyproject.toml (needs PyPI; UPGRADE=1 to move to the newest)
	set -o pipefail; $(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		| $(UV_COMPILE) - --extra dev --universal -o $(DEV_LOCK)
	$(UV_COMPILE) --python-platform $(LAYER_PLATFORM) --only-binary :all: -c $(DEV_LOCK) -o $(LAYER_LOCK)

audit: $(STAMP) ## Known vulnerabilities in the locks: pip-audit when online, else the OSV snapshot VULN_DB_SNAPSHOT
	$(BIN)/python -m tools.dependency_audit $(LAYER_LOCK) $(DEV_LOCK)

$(ANVIL): local_stack/evm/package.json local_stack/evm/package-lock.json
	npm ci --prefix local_stack/evm --no-audit --no-fund
	@touch $@

# actionlint without shellcheck and pyflakes, so it finds the same on every machine whatever is on PATH;
# the files are named so it also runs outside a git checkout.
lint: $(STAMP) ## ruff (check and format), mypy (strict on domain and services), import-linter contracts, actionlint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/shared/portfolio
	$(BIN)/mypy --strict layers/shared/portfolio/domain layers/shared/portfolio/services
	$(BIN)/lint-imports
	$(BIN)/actionlint -shellcheck= -pyflakes= $(wildcard .github/workflows/*.yml .github/workflows/*.yaml)

# Two workers, each with its own moto, Redis and chain nodes; a test file stays on one worker.
PYTEST_WORKERS ?= 2

test: $(STAMP) $(ANVIL) lint ## Lint and run the whole test suite (starts a Redis if REDIS_URL is not set)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-faults: $(STAMP) $(ANVIL) ## Only the reliability suite (real faults)
	$(BIN)/python -m pytest tests/faults $(PYTEST_ARGS)

dev: $(STAMP) $(ANVIL) ## Run the whole system locally (API on 127.0.0.1:$${PORT:-3000}); DEMO=1 loads demo users
	$(BIN)/python -m local_stack

dev-regions: $(STAMP) $(ANVIL) ## Two regions locally: the home stack, a second region's API and a replicator between their tables
	$(BIN)/python -m local_stack.two_regions

token: $(STAMP) ## Print a bearer token for the local stack: make token USER=alice
	@$(BIN)/python -m local_stack.token $(or $(USER_ID),$(USER))

openapi: $(STAMP) ## Regenerate docs/openapi.json from the API routes
	$(BIN)/python -m portfolio.api.openapi > docs/openapi.json

bench: $(STAMP) $(ANVIL) ## Run every benchmark; the last line is one JSON object
	$(BIN)/python -m benchmarks

build: $(STAMP) ## sam build (needs aws-sam-cli and python$(PYTHON_VERSION) on PATH)
	PATH="$(dir $(PYTHON)):$$PATH" sam build

validate: $(STAMP) ## cfn-lint and sam validate --lint
	$(BIN)/cfn-lint template.yaml
	sam validate --lint

clean: ## Remove the virtualenv and build output
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache .hypothesis
