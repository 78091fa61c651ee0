"""The documentation: README.md is the front page, docs/ the reference site (mkdocs.yml).

The site builds with `mkdocs build --strict` (broken links, missing anchors, pages left out
of the nav and missing snippet sections all fail it), every page of docs/ is in the nav, and
every relative link of the README leads to a file that exists and, with an anchor, to one
of its headings as GitHub names them.
"""

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mkdocs.config import load_config
from modstream.core.settings import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+).+?\1", flags=re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose(text: str) -> str:
    """The Markdown outside fenced code blocks and inline code spans."""
    kept: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return CODE_SPAN.sub("", "\n".join(kept))


def github_anchors(text: str) -> set[str]:
    """The ids GitHub gives a Markdown file's headings: lower case, punctuation dropped,
    spaces as dashes, and -1, -2, … after a repeated one."""
    seen: Counter[str] = Counter()
    anchors: set[str] = set()
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        heading = None if fenced else HEADING.match(line)
        if heading is None:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(2))  # a link's text
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return anchors


def broken_links(page: Path) -> list[str]:
    """The relative links of a Markdown file whose file, or whose anchor, does not exist."""
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in github_anchors(file.read_text())):
            broken.append(target)
    return broken


def nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return [page for item in nav or [] for page in nav_pages(item)]


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    # The README's sections that are pages too came through the snippets.
    assert "modstream-dashboard-users" in (site / "kubernetes" / "index.html").read_text()
    assert "At least once, effectively once." in (site / "reliability" / "index.html").read_text()
    assert "attire.revealing" in (site / "models" / "index.html").read_text()


def test_every_page_is_in_the_nav() -> None:
    config = load_config(str(PROJECT_ROOT / "mkdocs.yml"))
    docs = Path(config.docs_dir)
    listed = nav_pages(config.nav)
    assert len(listed) == len(set(listed)), listed
    assert sorted(listed) == sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.md"))


def test_the_readme_links_resolve() -> None:
    assert LINK.findall(prose(README.read_text())), "no link found: the checker is broken"
    assert broken_links(README) == []


@pytest.mark.parametrize(
    ("markdown", "broken"),
    [
        ("[a](docs/page.md#a-title-with-code) [b](#top) [c](https://x.org/#y) ![d](docs/)", []),
        ("[a](docs/nope.md) [b](docs/page.md#nope) [c](#nope)", ["docs/nope.md", "docs/page.md#nope", "#nope"]),
        ("`[a](nope.md)` and\n```\n[b](nope.md)\n```", []),
    ],
)
def test_the_link_checker(tmp_path: Path, markdown: str, broken: list[str]) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A title, with `code`\n\n```\n# not a heading\n```\n")
    (tmp_path / "README.md").write_text(f"# Top\n\n{markdown}\n")
    assert broken_links(tmp_path / "README.md") == broken


def test_the_readme_opens_with_the_two_commands() -> None:
    opening = README.read_text().split("```")[1].splitlines()
    assert [line.split()[0] for line in opening[1:] if line.strip()] == ["scripts/demo", "scripts/test"]
