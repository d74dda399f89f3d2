# Two commands set up a fresh machine: `make synth` and `make test`. `make` alone lists every target.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The venv first on PATH for every recipe (cdk.json runs tools/cdk-app.sh, which uses it too).
export PATH := $(BIN):$(PATH)
# jsii warns on every start under Node 20 unless its major version is listed here.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := true
# Some machines set PYTHONDONTWRITEBYTECODE (the one this project is built and checked on does): then
# every run compiles the project's modules again and pytest rewrites every test file again, about 1.5 s
# a process here.
unexport PYTHONDONTWRITEBYTECODE
CDK := npx --no-install cdk
# Extra CDK arguments, e.g. make synth CDK_ARGS='-c instanceType=inf2.xlarge -c batching={"maxBatchSize": 16}'.
# Exported rather than written into the recipe, so JSON keeps its quotes: tools/cdk_cli.py splits it.
CDK_ARGS ?=
export CDK_ARGS
CDK_CLI := $(BIN)/python -m tools.cdk_cli
PIP := -m pip install --quiet --disable-pip-version-check

# What each part needs, installed the first time a target needs it (each step says what and how long):
APP_STAMP := $(VENV)/.installed-app
CLIENT_STAMP := $(VENV)/.installed-client
DEV_STAMP := $(VENV)/.installed-dev
NODE_STAMP := node_modules/.installed
MODEL_VENV := .model-venv
MODEL_STAMP := $(MODEL_VENV)/.installed
LINT_VENV := .lint-venv
LINT_STAMP := $(LINT_VENV)/.installed
TRITON_VENV := .triton-venv
TRITON_STAMP := $(TRITON_VENV)/.installed

.PHONY: help setup synth bootstrap diff deploy destroy aws-credentials service-roles test lint typecheck unit \
	model-unit snapshot-update bench tunnel bench-local bench-synth text-local integ integ-destroy triton-check model model-check model-upload \
	proto constraints clean

help: ## This list.
	@echo "Targets (README.md for the few you need first; docs/ for the rest):"
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/\1|\2/' \
	  | awk -F'|' '{ printf "  %-16s %s\n", $$1, $$2 }'

$(APP_STAMP): requirements.txt constraints.txt
	@echo "Installing the CDK app's packages into $(VENV) (aws-cdk-lib, constructs, cdk-nag; about 300 MB with the bytecode of the first synth, under a minute)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP) --no-compile -r requirements.txt -c constraints.txt
	touch $@

$(CLIENT_STAMP): $(APP_STAMP) requirements-client.txt constraints.txt
	@echo "Installing the load client's packages into $(VENV) (grpcio, aiohttp, numpy, tokenizers, boto3; about 30 s)"
	$(BIN)/python $(PIP) -r requirements-client.txt -c constraints.txt
	touch $@

$(DEV_STAMP): $(CLIENT_STAMP) requirements-dev.txt constraints.txt
	@echo "Installing the test tools into $(VENV) (pytest, hypothesis, syrupy, ruff, mypy; about 30 s)"
	$(BIN)/python $(PIP) -r requirements-dev.txt -c constraints.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	@echo "Installing the pinned AWS CDK CLI from npm (npm ci; a few seconds)"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(MODEL_STAMP): requirements-model.txt requirements-client.txt constraints-model.txt
	@echo "Installing the model build's frameworks into $(MODEL_VENV) (TensorFlow, PyTorch's CPU build, transformers;"
	@echo "  about 3.3 GB, a minute or two here, several minutes on a slow link; once)"
	$(PYTHON) -m venv $(MODEL_VENV)
	$(MODEL_VENV)/bin/python $(PIP) -r requirements-model.txt -c constraints-model.txt
	touch $@

$(LINT_STAMP): requirements-lint.txt constraints-lint.txt
	@echo "Installing the scanners into $(LINT_VENV) (cfn-lint, checkov, hadolint, shellcheck, actionlint; about 40 s)"
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python $(PIP) -r requirements-lint.txt -c constraints-lint.txt
	touch $@

$(TRITON_STAMP): requirements-triton.txt
	@echo "Installing a real Triton (nvidia-pytriton) into $(TRITON_VENV) for make triton-check (about 30 s)"
	$(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python $(PIP) -r requirements-triton.txt
	touch $@

setup: $(APP_STAMP) $(NODE_STAMP) ## The CDK app's venv and the pinned CDK CLI (what synth needs, nothing more).

synth: setup ## Synthesize the stack into cdk.out/ (no AWS account needed).
	$(CDK_CLI) synth --no-notices --quiet
	@echo "Templates written to cdk.out/"

bootstrap: setup aws-credentials service-roles ## Once per account and region: service-linked roles, then cdk bootstrap.
	$(CDK_CLI) bootstrap --no-notices

diff: setup aws-credentials ## What a deploy would change.
	$(CDK_CLI) diff --no-notices

deploy: setup aws-credentials ## Deploy the stack (builds and pushes the images first).
	$(CDK_CLI) deploy --no-notices

destroy: setup aws-credentials ## Delete the stack (docs/operations.md says what it leaves).
	$(CDK_CLI) destroy --no-notices

aws-credentials: $(CLIENT_STAMP) ## Stop in one line unless AWS credentials and a region are set up.
	@$(BIN)/python -m tools.aws_credentials

service-roles: $(CLIENT_STAMP) aws-credentials ## Create ECS's and Auto Scaling's service-linked roles ("exists" is fine).
	$(BIN)/python -m tools.service_roles

# The checks, the suite and the model build's tests side by side (each waits on different work), their
# output kept apart; any of them failing fails the target.
test: $(DEV_STAMP) ## ruff, mypy, the pytest suite, and the model build's tests in their venv.
	@$(MAKE) --no-print-directory -j3 --output-sync=target typecheck unit model-unit

lint: $(DEV_STAMP) $(LINT_STAMP) ## ruff, then cfn-lint, checkov, hadolint, shellcheck and actionlint over what ships.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m tools.scan --lint-venv $(LINT_VENV)

typecheck: $(DEV_STAMP) ## ruff and mypy.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@[ -d .mypy_cache ] || echo "mypy: the first run builds its cache (about a minute and a half), later runs take seconds"
	$(BIN)/mypy

unit: $(DEV_STAMP) ## The pytest suite (two workers).
	$(BIN)/pytest

model-unit: $(MODEL_STAMP) ## The model build's tests (TensorFlow and PyTorch on CPU), in .model-venv.
	$(MODEL_VENV)/bin/python -m pytest -o addopts=-ra --confcutdir=tests/model -p no:cacheprovider tests/model

snapshot-update: $(DEV_STAMP) ## Rewrite the template snapshots after a deliberate change.
	$(BIN)/pytest -n 0 tests/test_snapshots.py --snapshot-update

# Prove a deploy in a real account (docs/integ.md): INTEG_MODEL_S3_URI=s3://bucket/prefix, and optionally
# INTEG_FAMILY, INTEG_SPOT, INTEG_RUN_ID, INTEG_BENCH_SECONDS, INTEG_REPORT.
integ: $(DEV_STAMP) $(NODE_STAMP) aws-credentials ## Deploy a disposable copy, check it, destroy it, report (needs AWS).
	$(BIN)/python -m tools.integ

integ-destroy: $(DEV_STAMP) $(NODE_STAMP) aws-credentials ## Destroy INTEG_RUN_ID's copy and sweep for leftovers (after a killed run).
	$(BIN)/python -m tools.integ --destroy

# Load a deployed server: make bench STACK=BertInferentia | TARGET=host:8500, and any client option in
# BENCH_ARGS, e.g. BENCH_ARGS='--concurrency 8 --duration 30 --text "A sentence." --tokenizer components/model_server/model/1'
TARGET ?=
STACK ?=
BENCH_ARGS ?=
bench: $(CLIENT_STAMP) ## Load a deployed server: STACK=name or TARGET=host:port, options in BENCH_ARGS.
	$(BIN)/python -m client $(if $(TARGET),--target $(TARGET)) $(if $(STACK),--stack $(STACK)) $(BENCH_ARGS)

TUNNEL_ARGS ?=
tunnel: $(CLIENT_STAMP) ## The internal endpoint on localhost, through the stack's relay task: STACK=name.
	$(BIN)/python -m tools.tunnel --stack "$(or $(STACK),BertInferentia)" $(TUNNEL_ARGS)

bench-local: $(DEV_STAMP) ## The client against the loopback stand-in: throughput at 20 ms, overhead at 0.
	$(BIN)/python -m tools.bench_local

# The text API on 127.0.0.1:PORT for a model of make model's; with no MODEL_SERVER, against the stand-in.
MODEL ?=
MODEL_SERVER ?=
SERVER_API ?=
PORT ?= 8080
text-local: $(DEV_STAMP) ## The text front on 127.0.0.1:PORT: MODEL=dir, MODEL_SERVER=host:port (else the stand-in).
	$(BIN)/python -m tools.text_local --model "$(MODEL)" --model-server "$(MODEL_SERVER)" \
	  --server-api "$(SERVER_API)" --port "$(PORT)"

BENCH_SYNTH_ARGS ?=
bench-synth: setup ## `cdk synth` of the default app against a one-resource app: times and their ratio.
	$(BIN)/python -m tools.bench_synth $(BENCH_SYNTH_ARGS)

triton-check: $(DEV_STAMP) $(MODEL_STAMP) $(TRITON_STAMP) ## The Triton stack's parts against a real tritonserver on this CPU.
	$(BIN)/python -m tools.triton_check --triton-venv $(TRITON_VENV) --model-python $(MODEL_VENV)/bin/python

# A model for the server: make model [FAMILY=inf1|inf2|cpu] [SERVER=tfserving|triton] [CHECKPOINT=id|dir]
# [OUT=dir] [VERSION=n] [BATCH=n] [SEQ=n] [TINY=1]; empty variables take the stack's settings (cdk.json and
# CDK_ARGS) or their defaults (docs/model.md).
FAMILY ?=
SERVER ?=
CHECKPOINT ?=
OUT ?=
VERSION ?=
BATCH ?=
SEQ ?=
TINY ?=
model: $(MODEL_STAMP) ## Build the model the stack serves (FAMILY=cpu TINY=1: a quick local one, in a scratch folder).
	$(MODEL_VENV)/bin/python -m modelbuild --family "$(FAMILY)" --server "$(SERVER)" --checkpoint "$(CHECKPOINT)" \
	  --out "$(OUT)" --version "$(VERSION)" --batch "$(BATCH)" --seq "$(SEQ)" --tiny "$(TINY)"

TEXT ?=
PAIR ?=
model-check: $(MODEL_STAMP) ## Ask the newest model under OUT about TEXT (and PAIR), as the client would.
	$(MODEL_VENV)/bin/python -m modelbuild check --out "$(OUT)" --text "$(TEXT)" --pair "$(PAIR)"

S3 ?=
model-upload: $(MODEL_STAMP) ## Upload every built version to S3=s3://bucket/prefix, for -c modelS3Uri=...
	$(MODEL_VENV)/bin/python -m modelbuild upload --s3 "$(S3)" --out "$(OUT)"

proto: $(DEV_STAMP) ## Regenerate the client's TF Serving and KServe messages from their .proto files.
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. components/model_server/apis/tfs_api/tensorflow_serving.proto
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. components/model_server/apis/kserve_api/kserve.proto

# Each venv's file, built afresh from its requirements: .venv's, .model-venv's and .lint-venv's.
constraints: ## Re-pin every venv's packages after a change to requirements*.txt.
	@for pair in requirements-dev.txt:constraints.txt requirements-model.txt:constraints-model.txt \
	    requirements-lint.txt:constraints-lint.txt; do \
	  rm -rf /tmp/constraints-venv && $(PYTHON) -m venv /tmp/constraints-venv; \
	  /tmp/constraints-venv/bin/python $(PIP) -r "$${pair%%:*}"; \
	  { echo "# Every package of $${pair%%:*}, pinned: regenerate with 'make constraints'."; \
	    /tmp/constraints-venv/bin/pip freeze | sed -E 's/^(torch==[0-9.]+)\+cpu$$/\1/'; } > "$${pair##*:}"; \
	done

clean: ## Remove the venvs other than .venv, and every cache.
	rm -rf $(MODEL_VENV) $(LINT_VENV) $(TRITON_VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
