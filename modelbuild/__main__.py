"""python -m modelbuild: see modelbuild.cli."""

import sys

from modelbuild.cli import main

sys.exit(main())
