"""Container names in a task besides the model server's own, which is the model's name."""

from __future__ import annotations

NEURON_MONITOR = "neuron-monitor"
NEURON_RTD = "neuron-rtd"
MODEL_SYNC = "model-sync"
TEXT_FRONT = "text-front"
SIDECARS = frozenset({NEURON_MONITOR, NEURON_RTD, MODEL_SYNC, TEXT_FRONT})
# The node problem detector and recovery daemon's task
NPD = "npd"
RECOVERY = "recovery"
DAEMON = frozenset({NPD, RECOVERY})
# make tunnel's relay task, alone in its task (tools/tunnel.py finds it by this name)
RELAY = "relay"
