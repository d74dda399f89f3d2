"""The README and docs/: every relative link and anchor resolves, and the README stays a first screen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
README_MOST_LINES = 150


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, inside = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside and (heading := re.match(r"^#{1,6} (.+)$", line)):
            found.add(slug(heading[1]))
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+://|mailto:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    for target in links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} names no file"
        if anchor:
            assert linked.suffix == ".md", f"{page.name}: {target}"
            assert anchor in anchors(linked), f"{page.name}: {target} names no heading of {linked.name}"


def test_the_check_sees_a_broken_anchor(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n## Parking at zero\n\nSee [parking](#parking-at-zero) and [gone](#gone).\n")

    assert slug("Parking at zero") in anchors(page)
    assert [target for target in links(page) if target.removeprefix("#") not in anchors(page)] == ["#gone"]


def test_the_readme_is_a_first_screen_with_an_index_of_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()

    assert len(readme.splitlines()) <= README_MOST_LINES
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, f"the README's index lacks docs/{page.name}"
    for needed in ("## Prerequisites", "## Cost and teardown", "make synth", "make test", "make deploy"):
        assert needed in readme
