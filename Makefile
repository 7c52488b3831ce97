# feedsync developer commands. Everything installs into .venv; nothing is assumed on the machine
# beyond Python 3.11+ with venv and pip.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pytest-xdist processes (TEST_WORKERS=1: one process, as before)
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
ARCH ?= x86_64
export LAMBDA_ARCH := $(ARCH)
# sam build runs the layer Makefile with this PATH, so pip there is the venv's pip.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# The Lambda runtime's Python, to import the built handlers as Lambda does (optional).
# Looked for on PATH and where installers put it; a pyenv shim whose pyenv is not set up for
# this HOME fails `-c pass` and the next candidate is tried.
PY312 ?= $(shell for p in $$(command -v python3.12) /usr/local/bin/python3.12 /usr/bin/python3.12 \
	$${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 /root/.pyenv/versions/3.12*/bin/python3.12 \
	/opt/python*/bin/python3.12 $$HOME/.local/share/uv/python/cpython-3.12*/bin/python3.12; do \
	"$$p" -c pass 2>/dev/null && echo "$$p" && break; done)
export LAMBDA_PYTHON_BIN := $(PY312)
STAMP := $(VENV)/.installed

NATIVE_SRC := layers/shared/feedsync/datafeed/native/feedscan.c
NATIVE_LIB := layers/shared/feedsync/datafeed/native/libfeedscan.so

CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_VERSION := 3.3.30

.PHONY: help install native lint format typecheck complexity cfn-lint validate checkov audit build artifacts-test pytest test faults demo local sam-local bench bench-cold-start bench-scale screenshots clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml layers/shared/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

install: $(STAMP)  ## create .venv with the package, dev tools and benchmark baselines

$(NATIVE_LIB): $(NATIVE_SRC) $(STAMP)
	$(BIN)/python -m ziglang cc -O2 -shared -fPIC -Wall -Wextra -Werror -o $@ $<

native: $(NATIVE_LIB)  ## build the native hit scanner for this machine (zig cc, from PyPI)

lint: $(STAMP)  ## ruff lint (with the complexity gate) + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)  ## mypy (strict) on the layer package and the handlers
	$(BIN)/mypy

complexity: $(STAMP)  ## the complexity gate alone: no function above McCabe 12 (also part of lint)
	$(BIN)/ruff check --select C90 .

cfn-lint: $(STAMP)  ## lint template.yaml
	$(BIN)/cfn-lint template.yaml

validate: $(STAMP)  ## sam validate --lint
	SAM_CLI_TELEMETRY=0 $(BIN)/sam validate --lint

# checkov pins its own boto3 and packaging: it lives in a venv of its own
$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

checkov: $(CHECKOV_STAMP)  ## checkov on template.yaml (every finding fixed or skipped with a reason)
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download

audit: $(STAMP)  ## pip-audit of the layer's pins; fails when a package could not be audited
	$(BIN)/pip-audit -r layers/shared/requirements.txt --strict --no-deps --disable-pip

build: $(STAMP)  ## sam build (layer wheels for the Lambda runtime; ARCH=arm64 for Graviton)
	SAM_CLI_TELEMETRY=0 $(BIN)/sam build --parameter-overrides Architecture=$(ARCH)

artifacts-test: build  ## import every handler from .aws-sam/build as Lambda would
	@if [ -z "$(PY312)" ]; then \
		echo "artifacts-test: SKIPPED - no python3.12 (the Lambda runtime) on this machine; install it, or name it with PY312=/path/to/python3.12, to run this check"; \
	else \
		$(BIN)/python -m pip install --quiet --no-compile --upgrade --target .aws-sam/lambda-runtime \
			--python-version 3.12 --only-binary=:all: boto3 && \
		LAMBDA_WHEEL_ARCH=$(if $(filter arm64,$(ARCH)),aarch64,x86_64) \
			$(PY312) tests/artifacts/import_handlers.py .aws-sam/build; \
	fi

pytest: $(STAMP) $(NATIVE_LIB) $(CHECKOV_STAMP)  ## unit, integration, conformance and (sampled) fault tests
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

test: lint typecheck cfn-lint validate checkov artifacts-test pytest  ## every check

faults: $(STAMP) $(NATIVE_LIB)  ## the whole fault sweep: every kill point, every per-call fault; prints figures
	$(BIN)/python -m tests.faults.sweep

sam-local: build  ## every event in events/ through `sam local invoke` against `feedsync local up` (skips, saying why, without Docker)
	$(BIN)/python -m sandbox.samlocal

demo: $(STAMP) $(NATIVE_LIB)  ## whole pipeline locally: parse a generated delivery (moto S3), then the daily run against the sandbox (DESTINATIONS=aep for Experience Platform)
	$(BIN)/python -m sandbox.demo $(if $(DESTINATIONS),--destinations $(DESTINATIONS))

bench: $(STAMP) $(NATIVE_LIB) bench-cold-start  ## reader, whole-parse, daily-run, mirror and cold-start benchmarks against their baselines
	$(BIN)/python -m bench.bench_reader
	$(BIN)/python -m bench.bench_enrich
	$(BIN)/python -m bench.bench_mirror

screenshots: $(STAMP) $(NATIVE_LIB)  ## docs/*.png: the status page (enriched, given-up, failed, waiting days) and a report, by headless Chromium
	PYTHONPATH=layers/shared:.:functions/enrich_upload $(BIN)/python -m sandbox.screenshots

bench-scale: $(STAMP) $(NATIVE_LIB)  ## the daily run at 10 k, 100 k and 1 M pending visitors through the handler: calls per 1,000 by operation, DynamoDB units, continuations, a cost model
	$(BIN)/python -m bench.bench_scale $(if $(SIZES),--sizes $(SIZES))

bench-cold-start: build  ## each handler's import from .aws-sam/build vs `import boto3; boto3.client("s3")` (python3.12)
	$(BIN)/python -m bench.bench_cold_start --compile-layer

clean:  ## remove build outputs (keeps .venv)
	rm -rf .aws-sam .demo bench/.data .pytest_cache .mypy_cache .ruff_cache $(NATIVE_LIB) $(CHECKOV_VENV)
