"""Container scripts loaded from their files for a test, without putting their folder on ``sys.path``
for the whole session (a runtime folder's module names, model.py among them, would shadow packages
other tests import)."""

from __future__ import annotations

import importlib.util
import shutil
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


def copied_into(dockerfile: Path, destination: str) -> list[str]:
    """The build-context paths ``dockerfile`` COPYs into ``destination`` (not those from another stage)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    sources: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not words[1].startswith("--") and words[-1] == destination:
            sources.extend(words[1:-1])
    return sources


def image_bin(dockerfile: Path, bin_dir: Path) -> Path:
    """A ``/usr/local/bin`` look-alike holding what ``dockerfile`` puts there, and nothing else: an
    entrypoint run from it finds only the modules the image ships."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    context = dockerfile.parents[2]  # components/, every image's build context
    for source in copied_into(dockerfile, "/usr/local/bin/"):
        shutil.copy2(context / source, bin_dir / Path(source).name)
    return bin_dir


def copy_as_built(dockerfile: Path, context: Path, root: Path, workdir: str = "/") -> None:
    """Every ``COPY`` of ``dockerfile`` from ``context`` applied under ``root``, as the build would lay the
    files out (a source folder's contents into a destination ending in ``/``; relative destinations under
    ``workdir``; ``${VAR}`` left as written). A test run from ``root`` then sees only what the image ships."""
    text = dockerfile.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        words = line.split()
        if words[:1] != ["COPY"] or words[1].startswith("--"):
            continue
        *sources, destination = words[1:]
        target = root / (destination if destination.startswith("/") else f"{workdir}/{destination}").lstrip("/")
        for source in sources:
            found = context / source
            if found.is_dir():
                shutil.copytree(found, target, dirs_exist_ok=True)
            elif found.is_file():
                into = target / found.name if destination.endswith("/") else target
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(found, into)
