"""Container scripts loaded from their files for a test, without putting their folder on ``sys.path``
for the whole session (docker/model-server's names, model/ and triton-server/, would shadow packages
other tests import)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def load_script(path: Path, module_name: str | None = None) -> ModuleType:
    """``path`` run as a fresh module named ``module_name`` (default: the file's stem)."""
    spec = importlib.util.spec_from_file_location(module_name or path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
