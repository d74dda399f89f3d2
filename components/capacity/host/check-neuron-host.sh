# shellcheck shell=bash
# Joins the ECS cluster only once every Neuron device of this instance size is present and the
# loaded Neuron driver is one the image's runtime runs on.
#
# The AL2023 Neuron ECS AMI fits the driver before cloud-init runs: on Inf1 a unit ordered
# Before=cloud-init.service ecs.service installs the cached aws-neuronx-dkms 2.21 RPMs and
# versionlocks them (amazon-ecs-ami scripts/al2023/neuron/neuron-inf1-downgrade.sh and .service),
# and the AMI build removes the Neuron yum repository (scripts/enable-ecs-agent-inferentia-support.sh).
# So this script installs and removes nothing: it waits a bounded time for /dev/neuron0 ..
# /dev/neuron<N-1>, then reads the driver's version (/sys/module/neuron/version, which the kernel
# fills from the module's MODULE_VERSION, aws-neuron-driver neuron_module.c; else modinfo). A newer AMI
# can carry a driver that refuses the image's runtime ("Neuron Driver 2.29 requires Neuron Runtime
# Library 2.33 or later", aws-neuron-sdk runtime release notes). If a device is missing or the driver
# lies outside the release table's range, the instance cannot serve. It then keeps the ECS agent from
# starting (ecs.service runs After=cloud-final.service: amazon-ecs-agent
# packaging/amazon-linux-ami-integrated/ecs.service), says why in the journal and in
# /var/log/cloud-init-output.log, and powers off: a stopped instance fails the Auto Scaling group's
# EC2 health check, and the group replaces it (EC2 Auto Scaling user guide, "Health checks for
# instances in an Auto Scaling group"). No AWS call, so the instance role needs no grant for it.
#
# Set before this point: NEURON_DEVICE_COUNT, NEURON_DEVICE_WAIT_SECONDS, NEURON_DEVICE_POLL_SECONDS,
# NEURON_DRIVER_LOWEST and NEURON_DRIVER_BELOW (the runtime's driver range, config/neuron_releases.py).

# Logs why, keeps the agent from starting and powers off; the Auto Scaling group replaces the instance.
refuse_to_join() {
  local reason="$1; not joining the ECS cluster; powering off so the Auto Scaling group replaces this instance"
  echo "check-neuron-host: ${reason}" >&2
  logger --tag check-neuron-host --priority user.err "${reason}" || true
  # Best effort: without ECS_CLUSTER (written after this script) the agent could not join anyway.
  systemctl mask --now --no-block ecs.service || true
  shutdown -h now "check-neuron-host: ${reason}"
  exit 1
}

# Whether dotted version $1 sorts before $2 (sort -V: 2.30.2.0 before 2.31).
version_below() {
  [[ "$1" != "$2" ]] && [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" == "$1" ]]
}

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
  refuse_to_join "missing ${neuron_missing}after ${NEURON_DEVICE_WAIT_SECONDS} s (this size has ${NEURON_DEVICE_COUNT})"
fi

neuron_driver="$(cat /sys/module/neuron/version 2>/dev/null || modinfo -F version neuron 2>/dev/null || true)"
if [[ ! "${neuron_driver}" =~ ^[0-9]+(\.[0-9]+)+$ ]]; then
  refuse_to_join "cannot read the Neuron driver's version (/sys/module/neuron/version: '${neuron_driver}')"
fi
if version_below "${neuron_driver}" "${NEURON_DRIVER_LOWEST}" || ! version_below "${neuron_driver}" "${NEURON_DRIVER_BELOW}"; then
  refuse_to_join "Neuron driver ${neuron_driver} is outside ${NEURON_DRIVER_LOWEST} up to (not including) ${NEURON_DRIVER_BELOW}, the drivers this image's Neuron runtime runs on (set amiRelease or amiId to an AMI with such a driver)"
fi
echo "check-neuron-host: all ${NEURON_DEVICE_COUNT} Neuron devices present, driver ${neuron_driver}"
