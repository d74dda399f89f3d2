# shellcheck shell=bash
# Joins the ECS cluster only once every Neuron device of this instance size is present.
#
# The AL2023 Neuron ECS AMI fits the driver before cloud-init runs: on Inf1 a unit ordered
# Before=cloud-init.service ecs.service installs the cached aws-neuronx-dkms 2.21 RPMs and
# versionlocks them (amazon-ecs-ami scripts/al2023/neuron/neuron-inf1-downgrade.sh and .service),
# and the AMI build removes the Neuron yum repository (scripts/enable-ecs-agent-inferentia-support.sh).
# So this script installs and removes nothing: it waits a bounded time for /dev/neuron0 ..
# /dev/neuron<N-1>. If one is missing the instance cannot serve. It then keeps the ECS agent from
# starting (ecs.service runs After=cloud-final.service: amazon-ecs-agent
# packaging/amazon-linux-ami-integrated/ecs.service), says why in the journal and in
# /var/log/cloud-init-output.log, and powers off: a stopped instance fails the Auto Scaling group's
# EC2 health check, and the group replaces it (EC2 Auto Scaling user guide, "Health checks for
# instances in an Auto Scaling group"). No AWS call, so the instance role needs no grant for it.
#
# Set before this point: NEURON_DEVICE_COUNT, NEURON_DEVICE_WAIT_SECONDS, NEURON_DEVICE_POLL_SECONDS.

missing_neuron_devices() {
  local index
  for ((index = 0; index < NEURON_DEVICE_COUNT; index++)); do
    [[ -e "/dev/neuron${index}" ]] || printf '/dev/neuron%d ' "${index}"
  done
}

neuron_polls_left=$((NEURON_DEVICE_WAIT_SECONDS / NEURON_DEVICE_POLL_SECONDS))
neuron_missing="$(missing_neuron_devices)"
while [[ -n "${neuron_missing}" ]] && ((neuron_polls_left > 0)); do
  sleep "${NEURON_DEVICE_POLL_SECONDS}"
  neuron_polls_left=$((neuron_polls_left - 1))
  neuron_missing="$(missing_neuron_devices)"
done

if [[ -n "${neuron_missing}" ]]; then
  neuron_reason="missing ${neuron_missing}after ${NEURON_DEVICE_WAIT_SECONDS} s (this size has ${NEURON_DEVICE_COUNT}); not joining the ECS cluster; powering off so the Auto Scaling group replaces this instance"
  echo "await-neuron-devices: ${neuron_reason}" >&2
  logger --tag await-neuron-devices --priority user.err "${neuron_reason}" || true
  # Best effort: without ECS_CLUSTER (written after this script) the agent could not join anyway.
  systemctl mask --now --no-block ecs.service || true
  shutdown -h now "await-neuron-devices: ${neuron_reason}"
  exit 1
fi
echo "await-neuron-devices: all ${NEURON_DEVICE_COUNT} Neuron devices present"
