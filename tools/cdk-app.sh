#!/bin/sh
# cdk.json's "app": the project's own virtual environment, so `npx cdk ...` typed by hand works
# without activating it (make puts it first on PATH as well).
set -eu
here="$(dirname "$0")/.."
if [ ! -x "$here/.venv/bin/python" ]; then
  echo "error: no .venv in $(cd "$here" && pwd): run 'make synth' once (it installs everything)" >&2
  exit 1
fi
# jsii prints a banner on every start under Node 20 unless its major version is listed here.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="${JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION:-20}"
exec "$here/.venv/bin/python" "$here/app.py"
