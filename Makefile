# Lifeboat developer entry points.
#
# Everything Python runs from the project venv ($(VENV)), never from the image's
# moto/cfn-lint. The local AWS stack (moto + Lambda bridge + `cargo lambda watch`)
# is managed by infra/local/stack.py; see `make help`.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV         := .venv
PYTHON       := $(VENV)/bin/python
REQUIREMENTS := infra/local/requirements.txt
STACK        := $(PYTHON) infra/local/stack.py

# Share one Rust target dir between builds, `cargo lambda watch` and CI runs.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/lifeboat/target

# Recipes that run cargo-lambda need the venv's bin on PATH: `cargo lambda` looks
# up the `cargo-lambda` executable there.
WITH_VENV_PATH := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"

.PHONY: help venv up down status

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create/refresh the Python venv (moto, cargo-lambda, cfn-lint)

# Re-run only when the requirements change; the stamp is written last so that a
# failed install is retried next time.
$(VENV)/.installed: $(REQUIREMENTS)
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --disable-pip-version-check --quiet -r $(REQUIREMENTS)
	@touch $@

up: $(VENV)/.installed ## Start (or reuse) the local AWS stack
	$(WITH_VENV_PATH) $(STACK) up

down: $(VENV)/.installed ## Stop the local AWS stack started by `make up`
	$(STACK) down

status: $(VENV)/.installed ## Show the local AWS stack's processes and health
	$(STACK) status
