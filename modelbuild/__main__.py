"""python -m modelbuild: see modelbuild.cli."""

import gc
import sys

from modelbuild.cli import main

status = main()
# What TensorFlow or PyTorch made lives until the process ends: frozen, the collector's passes while the
# interpreter tears down skip it (about 0.45 s of each `make model` and `make model-check` here).
gc.freeze()
sys.exit(status)
