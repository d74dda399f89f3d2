#!/bin/sh
# Starts whichever TF Serving Neuron binary the image's package installed; extra arguments
# (batching flags, for one) pass straight through.
set -eu
# Tasks that share an instance first claim their own NeuronCores (neuron_slot.py re-runs this
# script with NEURON_RT_VISIBLE_CORES set and the slot's lock held).
if [ -n "${NEURON_CORES_PER_TASK:-}" ] && [ -z "${NEURON_RT_VISIBLE_CORES:-}" ]; then
  exec python3 "$(dirname "$0")/neuron_slot.py" "$0" "$@"
fi
server=""
for candidate in tensorflow_model_server_neuronx tensorflow_model_server_neuron; do
  if command -v "$candidate" >/dev/null 2>&1; then
    server="$candidate"
    break
  fi
done
if [ -z "$server" ]; then
  echo "ERROR: no tensorflow_model_server_neuron binary in this image" >&2
  exit 1
fi
# A model copied from S3 is checked here (a baked one was checked at synth): not one built for another
# family or server, and no CPU or TINY build. Amazon Linux 2 (rtd) has no python3, and no S3 model.
if [ -n "${MODEL_FAMILY:-}" ] && command -v python3 >/dev/null 2>&1; then
  python3 "$(dirname "$0")/model_record.py" "$MODEL_BASE_PATH" "$MODEL_FAMILY" tfserving
fi
if [ -n "${BATCHING_PARAMETERS:-}" ]; then
  batching_file="$(mktemp)"
  printf '%s' "$BATCHING_PARAMETERS" > "$batching_file"
  # Batch sizes that are multiples of the model's compiled batch, or a one-line error.
  python3 "$(dirname "$0")/batch_sizes.py" "$MODEL_BASE_PATH" "$batching_file"
  set -- --enable_batching=true --batching_parameters_file="$batching_file" "$@"
fi
exec "$server" \
  --port="$GRPC_PORT" \
  --rest_api_port="$REST_PORT" \
  --model_name="$MODEL_NAME" \
  --model_base_path="$MODEL_BASE_PATH" \
  "$@"
