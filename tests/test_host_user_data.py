"""Instance user data, run against a simulated host: what a real boot would do with each variant's script.

The script is taken from the synthesized launch template, its CloudFormation references filled in,
and run with bash. Test doubles for the host's commands (dnf, yum, rpm, modprobe, aws, shutdown,
systemctl, ...) come first on PATH and record every call; a temporary root stands in for
``/etc/ecs`` and ``/dev``. The host starts as the AL2023 Neuron ECS AMI leaves it: the driver the AMI
chose installed and versionlocked, the Neuron yum repository removed, and its driver's version in
``/sys/module/neuron/version``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.capacity.asg_capacity import NEURON_DEVICE_POLL_SECONDS, NEURON_DEVICE_WAIT_SECONDS
from config.hardware import NeuronFamily
from config.neuron_releases import version_key
from tests.conftest import ASG_VARIANTS, Synthesized
from tools.scan import render_user_data

SynthFn = Callable[[str], Synthesized]
CLUSTER = "bert-cluster-test"

# The driver the default AMI (20260820) leaves on each family's hosts: the cached 2.21 on Inf1 (amazon-ecs-ami
# neuron-inf1-downgrade.sh), the newest when the AMI was built on Inf2 (2.30.2, Neuron 2.32.0); the rtd
# variant's own AMI carries a runtime-1.x driver.
AMI_DRIVER_VERSION = {NeuronFamily.INF1: "2.21.37.0", NeuronFamily.INF2: "2.30.2.0"}
RTD_DRIVER_VERSION = "1.5.0.0"
DOUBLES = (
    "dnf",
    "yum",
    "rpm",
    "modprobe",
    "rmmod",
    "dkms",
    "aws",
    "shutdown",
    "poweroff",
    "reboot",
    "systemctl",
    "logger",
    "sleep",
    "curl",
    "iptables",
    "service",
    "sudo",
    "modinfo",
)
# Calls that would change the host's Neuron driver or packages: the AMI owns them.
MUTATIONS = re.compile(
    r"^(?:(?:dnf|yum) (?:-\S+ )*(?:install|remove|erase|downgrade|upgrade|update|reinstall|swap|localinstall|"
    r"versionlock (?:delete|clear))"
    r"|rpm (?:-\S*[iUeF]\S*|--install|--upgrade|--erase|--freshen|--import)"
    r"|modprobe -r|rmmod|dkms (?:install|remove|uninstall|build))\b"
)

DOUBLE = r"""#!/bin/bash
# Test double: records the call, then answers as the AL2023 Neuron ECS AMI would. Bash builtins only
# (a boot that waits polls this a few dozen times).
call="${0##*/} $*"
printf '%s\n' "$call" >> "$SIM_CALLS"
case "$call" in
  "rpm -q"*aws-neuronx-dkms*) echo "$SIM_DRIVER" ;;
  "dnf versionlock list"*|"yum versionlock list"*) echo "aws-neuronx-dkms-0:$SIM_DRIVER-1.*" ;;
  "sudo "*) exec "$@" ;;
  "sleep "*)
    polls=0
    while read -r line; do [[ "$line" == "sleep "* ]] && polls=$((polls + 1)); done < "$SIM_CALLS"
    if [[ -n "${SIM_DEVICE_APPEARS_AFTER:-}" ]] && (( polls >= SIM_DEVICE_APPEARS_AFTER )); then
      : > "$SIM_LATE_DEVICE"
    fi
    [[ -z "${SIM_SLEEP_FAILS:-}" ]] ;;
esac
"""


@dataclass
class Boot:
    """What one simulated boot did."""

    returncode: int
    stderr: str
    calls: list[str]
    ecs_config: str

    @property
    def joined(self) -> bool:
        return f"ECS_CLUSTER={CLUSTER}" in self.ecs_config

    @property
    def mutations(self) -> list[str]:
        return [call for call in self.calls if MUTATIONS.match(call)]

    @property
    def powered_off(self) -> bool:
        return any(call.split()[0] in {"shutdown", "poweroff"} for call in self.calls)

    def seconds_slept(self) -> int:
        return sum(int(call.split()[1]) for call in self.calls if call.startswith("sleep "))


def rendered_user_data(synthesized: Synthesized) -> str:
    """The launch template's user data with its references filled in as CloudFormation would."""
    return render_user_data(synthesized.json, {"Cluster": CLUSTER})


def amis_driver(synthesized: Synthesized) -> str:
    if synthesized.settings.ami_id:
        return RTD_DRIVER_VERSION
    return AMI_DRIVER_VERSION[synthesized.settings.instance_size.family]


def boot(
    script: str,
    root: Path,
    *,
    devices: int,
    missing: tuple[int, ...] = (),
    appears_after: int | None = None,
    sleep_fails: bool = False,
    driver: str | None,
) -> Boot:
    """Runs ``script`` as cloud-init would, on a host with ``devices`` Neuron devices minus ``missing`` and
    the Neuron driver ``driver`` loaded (None: no version to read)."""
    bin_dir, dev, etc_ecs, module = root / "bin", root / "dev", root / "etc" / "ecs", root / "sys" / "module" / "neuron"
    for directory in (bin_dir, dev, etc_ecs, module):
        directory.mkdir(parents=True, exist_ok=True)
    if driver is not None:
        (module / "version").write_text(f"{driver}\n")
    for name in DOUBLES:
        (bin_dir / name).write_text(DOUBLE)
        (bin_dir / name).chmod(0o755)
    for index in range(devices):
        if index not in missing:
            (dev / f"neuron{index}").touch()
    (etc_ecs / "ecs.config").touch()
    calls = root / "calls.log"
    calls.touch()
    # The host's paths, moved under the temporary root.
    on_host = (
        script.replace("/etc/ecs/", f"{etc_ecs}/")
        .replace("/dev/neuron", f"{dev}/neuron")
        .replace("/sys/module/neuron/", f"{module}/")
    )
    (root / "user-data.sh").write_text(on_host)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "SIM_CALLS": str(calls),
        "SIM_DRIVER": driver or "",
        "SIM_LATE_DEVICE": str(dev / f"neuron{missing[0]}") if missing else "",
        **({"SIM_DEVICE_APPEARS_AFTER": str(appears_after)} if appears_after is not None else {}),
        **({"SIM_SLEEP_FAILS": "1"} if sleep_fails else {}),
    }
    result = subprocess.run(
        ["bash", str(root / "user-data.sh")], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return Boot(
        returncode=result.returncode,
        stderr=result.stderr,
        calls=calls.read_text().splitlines(),
        ecs_config=(etc_ecs / "ecs.config").read_text(),
    )


@pytest.mark.parametrize("variant", ASG_VARIANTS)
def test_with_every_device_present_the_instance_joins_and_leaves_the_amis_driver_alone(
    synth: SynthFn, variant: str, tmp_path: Path
) -> None:
    synthesized = synth(variant)

    result = boot(
        rendered_user_data(synthesized),
        tmp_path,
        devices=synthesized.settings.instance_size.chips,
        driver=amis_driver(synthesized),
    )

    assert result.returncode == 0, result.stderr
    assert result.joined
    assert result.mutations == []
    assert not result.powered_off
    assert result.seconds_slept() == 0


@pytest.mark.parametrize("variant", ASG_VARIANTS)
def test_with_a_device_missing_the_instance_does_not_join_and_powers_itself_off(
    synth: SynthFn, variant: str, tmp_path: Path
) -> None:
    synthesized = synth(variant)
    chips = synthesized.settings.instance_size.chips
    last = chips - 1  # the last device is the one a short count would miss

    result = boot(
        rendered_user_data(synthesized), tmp_path, devices=chips, missing=(last,), driver=amis_driver(synthesized)
    )

    assert result.returncode != 0
    assert not result.joined
    assert result.powered_off
    assert "systemctl mask --now --no-block ecs.service" in result.calls
    assert f"/dev/neuron{last} " in result.stderr or f"/neuron{last} " in result.stderr
    assert "not joining the ECS cluster" in result.stderr
    assert any(call.startswith("logger ") and "not joining" in call for call in result.calls)
    # it waited, and only as long as it says
    assert result.seconds_slept() == NEURON_DEVICE_WAIT_SECONDS
    assert result.mutations == []


def just_below(version: str) -> str:
    """The highest-looking dotted version below ``version``: 2.27 -> 2.26.99.0, 1.0 -> 0.99.0.0."""
    parts = list(version_key(version))
    index = max(position for position, part in enumerate(parts) if part > 0)
    parts[index] -= 1
    return ".".join(map(str, [*parts[: index + 1], 99, 0]))


@pytest.mark.parametrize("variant", ASG_VARIANTS)
@pytest.mark.parametrize("side", ["below", "above"])
def test_a_driver_outside_the_runtimes_range_keeps_the_instance_out(
    synth: SynthFn, variant: str, side: str, tmp_path: Path
) -> None:
    synthesized = synth(variant)
    drivers = synthesized.settings.releases.host_driver
    driver = just_below(drivers.lowest) if side == "below" else f"{drivers.below}.0.0"
    assert not drivers.admits(driver)
    assert drivers.admits(amis_driver(synthesized))  # the AMI the table was checked on is inside

    result = boot(
        rendered_user_data(synthesized), tmp_path, devices=synthesized.settings.instance_size.chips, driver=driver
    )

    assert result.returncode != 0
    assert not result.joined
    assert result.powered_off
    assert "systemctl mask --now --no-block ecs.service" in result.calls
    assert f"Neuron driver {driver} is outside {drivers.lowest}" in result.stderr
    assert any(call.startswith("logger ") and "not joining" in call for call in result.calls)
    assert result.mutations == []


def test_a_driver_whose_version_cannot_be_read_keeps_the_instance_out(synth: SynthFn, tmp_path: Path) -> None:
    result = boot(rendered_user_data(synth("default")), tmp_path, devices=1, driver=None)

    assert not result.joined
    assert result.powered_off
    assert "cannot read the Neuron driver's version" in result.stderr
    assert any(call.startswith("modinfo ") for call in result.calls)  # the second place it looks


@pytest.mark.parametrize("driver", ["2.21.37.0", "2.24.13.0"])
def test_inf1_hosts_join_on_the_amis_driver_and_on_the_last_inf1_driver(
    synth: SynthFn, driver: str, tmp_path: Path
) -> None:
    result = boot(rendered_user_data(synth("default")), tmp_path, devices=1, driver=driver)

    assert result.joined, result.stderr


def test_a_device_that_appears_while_waiting_lets_the_instance_join(synth: SynthFn, tmp_path: Path) -> None:
    synthesized = synth("large")

    result = boot(
        rendered_user_data(synthesized), tmp_path, devices=16, missing=(9,), appears_after=3, driver="2.21.37.0"
    )

    assert result.returncode == 0, result.stderr
    assert result.joined
    assert not result.powered_off
    assert result.seconds_slept() == 3 * NEURON_DEVICE_POLL_SECONDS


def test_the_script_fails_fast_a_failed_step_stops_it_before_the_join(synth: SynthFn, tmp_path: Path) -> None:
    script = rendered_user_data(synth("default"))

    result = boot(script, tmp_path, devices=1, missing=(0,), sleep_fails=True, driver="2.21.37.0")

    assert script.splitlines()[:2] == ["#!/bin/bash", "set -euo pipefail"]
    assert result.returncode != 0
    assert not result.joined
    assert len([call for call in result.calls if call.startswith("sleep ")]) == 1


def test_the_mutation_detector_catches_a_driver_swap(tmp_path: Path) -> None:
    # The user data this project shipped before: it removed the AMI's driver and installed 2.24.
    old = "\n".join(
        [
            "#!/bin/bash",
            "if ! rpm -q --qf '%{VERSION}' aws-neuronx-dkms | grep -q '^2\\.24\\.'; then",
            "  dnf remove -y aws-neuronx-dkms",
            "  dnf install -y 'aws-neuronx-dkms-2.24.*'",
            "  modprobe -r neuron || true",
            "fi",
            f"echo ECS_CLUSTER={CLUSTER} >> /etc/ecs/ecs.config",
        ]
    )

    result = boot(old, tmp_path, devices=1, driver="2.21.37.0")

    assert result.mutations == [
        "dnf remove -y aws-neuronx-dkms",
        "dnf install -y aws-neuronx-dkms-2.24.*",
        "modprobe -r neuron",
    ]


def test_the_wait_is_bounded_and_polls_often(synth: SynthFn) -> None:
    script = rendered_user_data(synth("default"))

    assert f"NEURON_DEVICE_WAIT_SECONDS={NEURON_DEVICE_WAIT_SECONDS}" in script
    assert 0 < NEURON_DEVICE_POLL_SECONDS <= 10 < NEURON_DEVICE_WAIT_SECONDS <= 600
