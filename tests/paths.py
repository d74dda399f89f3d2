"""Where each unit's runtime files live, for the tests that run or read them."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ROOT / "components"
SERVER_RUNTIME = COMPONENTS / "model_server" / "runtime"
MONITOR_RUNTIME = COMPONENTS / "neuron_monitor" / "runtime"
RTD_RUNTIME = COMPONENTS / "neuron_rtd" / "runtime"
TEXT_FRONT_RUNTIME = COMPONENTS / "text_front" / "runtime"
NEURON_INSTALL = COMPONENTS / "neuron_packages" / "neuron-install.sh"
MODEL_DIR = COMPONENTS / "model_server" / "model"
