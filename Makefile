# Two commands set up a fresh machine: `make synth` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The venv first on PATH for every recipe (cdk.json runs tools/cdk-app.sh, which uses it too).
export PATH := $(BIN):$(PATH)
# jsii warns on every start under Node 20 unless its major version is listed here.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := true
CDK := npx --no-install cdk
# Extra CDK arguments, e.g. make synth CDK_ARGS='-c instanceType=inf2.xlarge -c batching={"maxBatchSize": 16}'.
# Exported rather than written into the recipe, so JSON keeps its quotes: tools/cdk_cli.py splits it.
CDK_ARGS ?=
export CDK_ARGS
CDK_CLI := $(BIN)/python -m tools.cdk_cli

PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: aws-credentials service-roles setup synth bootstrap test lint typecheck unit snapshot-update deploy diff destroy bench tunnel triton-check bench-local bench-synth proto constraints clean model model-check model-upload

$(PY_STAMP): requirements.txt requirements-dev.txt requirements-model.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(PY_STAMP) $(NODE_STAMP)

synth: setup
	$(CDK_CLI) synth --no-notices --quiet
	@echo "Templates written to cdk.out/"

# Once per account and region, before the first deploy: the service-linked roles ECS and Auto Scaling use
# (created first, so a new account's first deploy cannot race them), then the CDK's bucket, repository and roles.
bootstrap: setup aws-credentials service-roles
	$(CDK_CLI) bootstrap --no-notices

diff: setup aws-credentials
	$(CDK_CLI) diff --no-notices

deploy: setup aws-credentials
	$(CDK_CLI) deploy --no-notices

destroy: setup aws-credentials
	$(CDK_CLI) destroy --no-notices

# Before anything that needs an AWS account: one line naming `aws configure` or AWS_PROFILE if none is set up.
aws-credentials: $(PY_STAMP)
	@$(BIN)/python -m tools.aws_credentials

service-roles: $(PY_STAMP) aws-credentials
	$(BIN)/python -m tools.service_roles

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(PY_STAMP)
	$(BIN)/mypy

unit: $(PY_STAMP)
	$(BIN)/pytest

test: lint typecheck unit

snapshot-update: $(PY_STAMP)
	$(BIN)/pytest -n 0 tests/test_snapshots.py --snapshot-update

# Load a deployed server: make bench STACK=BertInferentia | TARGET=host:8500, and any client option in
# BENCH_ARGS, e.g. BENCH_ARGS='--concurrency 8 --duration 30 --text "A sentence." --tokenizer docker/model-server/model/1'
TARGET ?=
STACK ?=
BENCH_ARGS ?=
bench: $(PY_STAMP)
	$(BIN)/python -m client $(if $(TARGET),--target $(TARGET)) $(if $(STACK),--stack $(STACK)) $(BENCH_ARGS)

# The internal endpoint on localhost, through an instance (Session Manager port forwarding; needs the AWS
# CLI's Session Manager plugin): make tunnel STACK=BertInferentia [TUNNEL_ARGS="--protocol rest"]
TUNNEL_ARGS ?=
tunnel: $(PY_STAMP)
	$(BIN)/python -m tools.tunnel --stack "$(or $(STACK),BertInferentia)" $(TUNNEL_ARGS)

# The client against the loopback TF Serving stand-in: throughput at 20 ms model time, overhead at 0.
bench-local: $(PY_STAMP)
	$(BIN)/python -m tools.bench_local

# The Triton stack's parts (make model SERVER=triton, serve_triton.py's repository, model.py, the client's
# KServe transports, the sidecar's metrics parser) against a real tritonserver on this CPU, in a venv of
# its own (tools/triton_check.py; about 40 s once installed). Not part of make test: the minute is spent.
TRITON_VENV := .triton-venv
$(TRITON_VENV)/.installed: requirements-triton.txt
	$(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-triton.txt
	touch $@

triton-check: $(PY_STAMP) $(TRITON_VENV)/.installed
	$(BIN)/python -m tools.triton_check --triton-venv $(TRITON_VENV)

# Regenerates the client's TF Serving messages from client/tfs_api/tensorflow_serving.proto.
proto: $(PY_STAMP)
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. client/tfs_api/tensorflow_serving.proto
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. client/kserve_api/kserve.proto

# Wall-clock time of a full `cdk synth` of the default app (CLI, python app.py, jsii), three runs.
bench-synth: setup
	@TIMEFORMAT='cdk synth: %R s wall'; for run in 1 2 3; do time $(CDK) synth --no-notices --quiet >/dev/null 2>&1; done

# Re-pins every installed package after a change to requirements*.txt.
constraints:
	rm -rf /tmp/constraints-venv && $(PYTHON) -m venv /tmp/constraints-venv
	/tmp/constraints-venv/bin/pip install --quiet -r requirements-dev.txt
	{ echo "# Every package the venv holds, pinned: regenerate with 'make constraints' after changing requirements*.txt."; \
	  /tmp/constraints-venv/bin/pip freeze | sed -E 's/^(torch==[0-9.]+)\+cpu$$/\1/'; } > constraints.txt

clean:
	rm -rf $(TRITON_VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis

# A model for the server: make model [FAMILY=inf1|inf2|cpu] [SERVER=tfserving|triton] [CHECKPOINT=id|dir]
# [OUT=dir] [VERSION=n] [BATCH=n] [SEQ=n] [TINY=1]; empty variables take their defaults (README,
# "Providing the model").
FAMILY ?=
SERVER ?=
CHECKPOINT ?=
OUT ?=
VERSION ?=
BATCH ?=
SEQ ?=
TINY ?=
model: $(PY_STAMP)
	$(BIN)/python -m modelbuild --family "$(FAMILY)" --server "$(SERVER)" --checkpoint "$(CHECKPOINT)" --out "$(OUT)" \
	  --version "$(VERSION)" --batch "$(BATCH)" --seq "$(SEQ)" --tiny "$(TINY)"

# The newest version under OUT answers a request built by the client, decoded as TF Serving decodes it:
# make model-check [OUT=dir] [TEXT="first sentence"] [PAIR="second sentence"]
TEXT ?=
PAIR ?=
model-check: $(PY_STAMP)
	$(BIN)/python -m modelbuild check --out "$(OUT)" --text "$(TEXT)" --pair "$(PAIR)"

# Every built version under OUT to S3, for -c modelS3Uri=...: make model-upload S3=s3://bucket/prefix
S3 ?=
model-upload: $(PY_STAMP)
	$(BIN)/python -m modelbuild upload --s3 "$(S3)" --out "$(OUT)"
