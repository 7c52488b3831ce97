# feedsync developer commands. Everything installs into .venv; nothing is assumed on the machine
# beyond Python 3.11+ with venv and pip.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARCH ?= x86_64
export LAMBDA_ARCH := $(ARCH)
# sam build runs the layer Makefile with this PATH, so pip there is the venv's pip.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# The Lambda runtime's Python, to import the built handlers as Lambda does (optional).
PY312 ?= $(shell for p in $$(command -v python3.12) $$HOME/.pyenv/versions/3.12*/bin/python3.12; do \
	"$$p" -c pass 2>/dev/null && echo "$$p" && break; done)
STAMP := $(VENV)/.installed

NATIVE_SRC := layers/shared/feedsync/datafeed/native/feedscan.c
NATIVE_LIB := layers/shared/feedsync/datafeed/native/libfeedscan.so

.PHONY: help install native lint format typecheck cfn-lint validate build artifacts-test pytest test demo bench clean

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

lint: $(STAMP)  ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)  ## mypy (strict) on the layer package and the handlers
	$(BIN)/mypy

cfn-lint: $(STAMP)  ## lint template.yaml
	$(BIN)/cfn-lint template.yaml

validate: $(STAMP)  ## sam validate --lint
	SAM_CLI_TELEMETRY=0 $(BIN)/sam validate --lint

build: $(STAMP)  ## sam build (layer wheels for the Lambda runtime; ARCH=arm64 for Graviton)
	SAM_CLI_TELEMETRY=0 $(BIN)/sam build --parameter-overrides Architecture=$(ARCH)

artifacts-test: build  ## import every handler from .aws-sam/build as Lambda would
	@if [ -z "$(PY312)" ]; then \
		echo "artifacts-test: SKIPPED - no python3.12 (the Lambda runtime) on this machine; install it to run this check"; \
	else \
		$(BIN)/python -m pip install --quiet --no-compile --upgrade --target .aws-sam/lambda-runtime \
			--python-version 3.12 --only-binary=:all: boto3 && \
		LAMBDA_WHEEL_ARCH=$(if $(filter arm64,$(ARCH)),aarch64,x86_64) \
			$(PY312) tests/artifacts/import_handlers.py .aws-sam/build; \
	fi

pytest: $(STAMP) $(NATIVE_LIB)  ## unit and integration tests
	$(BIN)/python -m pytest

test: lint typecheck cfn-lint validate artifacts-test pytest  ## every check

demo: $(STAMP) $(NATIVE_LIB)  ## whole pipeline locally: parse a generated delivery (moto S3), then the daily run against the sandbox
	$(BIN)/python -m sandbox.demo

bench: $(STAMP) $(NATIVE_LIB)  ## reader and daily-run benchmarks against the named baselines
	$(BIN)/python -m bench.bench_reader
	$(BIN)/python -m bench.bench_enrich

clean:  ## remove build outputs (keeps .venv)
	rm -rf .aws-sam .demo bench/.data .pytest_cache .mypy_cache .ruff_cache $(NATIVE_LIB)
