"""The documentation holds together, and the code cites only it.

- Every relative link in README.md and docs/*.md reaches a file of the repository and, when it
  has a `#fragment`, a heading of that file (GitHub's anchors).
- Code (comments, docstrings, strings) in the project's folders, its build and CI files and
  docs/'s example configurations cites the project's own pages,
  as `docs/<page>.md#<heading-anchor>`, and each citation exists. Design documents and specs
  that live outside the repository cannot be followed by whoever clones it, so citing them
  fails, as does a numbered section sign (a section number of a document nobody can see).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

CODE_FOLDERS = ("proxy", "kiosk", "sandbox", "site", "patronpay", "bench", "tools", "tests",
                "systemd")
CODE_SUFFIXES = {".py", ".js", ".html", ".css", ".toml", ".service", ".path", ".timer",
                 ".example", ".pam", ".sh"}
SKIPPED_PARTS = {"node_modules", "__pycache__", ".venv"}
# Outside those folders: the build and CI files at the top, and every file (whatever its
# name) of the CI folder and of docs/'s example configurations, whose comments cite pages too.
TOP_LEVEL_FILES = ("pyproject.toml", "setup.py", "constraints.txt")
WHOLE_FOLDERS = (".ci", "docs/prometheus", "docs/grafana")

SECTION_SIGN = "\u00a7"
# Outside documents by name, and section numbers of documents that are not in the repository.
# (Written with escapes so this file does not match its own patterns.)
OUTSIDE_DOCUMENTS = re.compile(
    r"DESIGN(\.md|\s+\u00a7)|\bspecs/[A-Za-z_-]+\.md|\.\./shared|\bshared/spec[s]")
# Section signs that name a public standard, not one of our documents.
PUBLIC_SECTIONS = re.compile(r"(CAS protocol|RFC ?\d+|WCAG [\d.]+) \u00a7")
DOCS_CITATION = re.compile(r"\bdocs/([A-Za-z0-9_.-]+\.md)(#[A-Za-z0-9_-]*)?(\s*\u00a7)?")

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
EXTERNAL = re.compile(r"^([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: formatting and punctuation dropped, lower case,
    each space a hyphen (duplicates get -1, -2 in `anchors`)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = unicodedata.normalize("NFC", text).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a Markdown file outside fenced code blocks, with their numbers."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path):
        found.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(found)


@dataclass(frozen=True)
class Link:
    page: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: {self.target}"


def relative_links(page: Path) -> list[Link]:
    links = []
    for number, line in prose_lines(page):
        text = INLINE_CODE.sub("", line)
        targets = INLINE_LINK.findall(text)
        if reference := REFERENCE_LINK.match(text):
            targets.append(reference.group(1))
        links += [Link(page, number, t) for t in targets if t and not EXTERNAL.match(t)]
    return links


def link_problem(link: Link) -> str | None:
    path_part, _, fragment = link.target.partition("#")
    target = (link.page.parent / path_part).resolve() if path_part else link.page
    if not target.exists():
        return "no such file"
    if ROOT in link.page.parents and ROOT not in target.parents:
        return "outside the repository"
    if fragment and target.suffix == ".md" and fragment not in anchors(target):
        return f"no heading with the anchor #{fragment} in {target.name}"
    return None


def test_docs_pages_exist():
    names = {page.name for page in PAGES}
    assert {"README.md", "architecture.md", "configuration.md", "deploy.md", "staff.md",
            "kiosk.md", "sandbox.md", "guarantees.md", "performance.md", "security.md",
            "alma.md", "cashnet.md", "why.md"} <= names


def test_every_relative_link_reaches_a_file_and_a_heading():
    problems = [f"{link}: {problem}" for page in PAGES for link in relative_links(page)
                if (problem := link_problem(link))]
    assert problems == []


def test_docs_do_not_point_outside_the_repository():
    found = [f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
             for page in PAGES for number, line in enumerate(
                 page.read_text(encoding="utf-8").splitlines(), start=1)
             if OUTSIDE_DOCUMENTS.search(line)]
    assert found == []


def code_files() -> list[Path]:
    files = []
    for folder in CODE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if (path.is_file() and path.suffix in CODE_SUFFIXES
                    and not SKIPPED_PARTS.intersection(path.relative_to(ROOT).parts)):
                files.append(path)
    files += [ROOT / name for name in TOP_LEVEL_FILES]
    for folder in WHOLE_FOLDERS:
        files += [path for path in sorted((ROOT / folder).rglob("*")) if path.is_file()]
    return files


def citation_problems(path: Path, number: int, line: str) -> list[str]:
    where = f"{path.relative_to(ROOT)}:{number}"
    problems = []
    if match := OUTSIDE_DOCUMENTS.search(line):
        problems.append(f"{where}: cites {match.group(0)!r}, which is not in the repository")
    elif SECTION_SIGN in PUBLIC_SECTIONS.sub("", line):
        problems.append(f"{where}: a section number; cite docs/<page>.md#<anchor> instead")
    for match in DOCS_CITATION.finditer(line):
        page, fragment, section = match.groups()
        target = ROOT / "docs" / page
        if section:
            problems.append(f"{where}: cite docs/{page} with #<anchor>, not a section sign")
        elif not target.exists():
            problems.append(f"{where}: docs/{page} does not exist")
        elif fragment and fragment[1:] not in anchors(target):
            problems.append(f"{where}: docs/{page} has no heading with the anchor {fragment}")
    return problems


def test_the_build_ci_and_example_files_are_read_too():
    read = {str(path.relative_to(ROOT)) for path in code_files()}
    assert {"pyproject.toml", "setup.py", ".ci/run", ".ci/wheel_smoke.py",
            "docs/prometheus/alerts.yml", "docs/grafana/patronpay.json"} <= read


def test_code_cites_only_existing_docs_pages_and_headings():
    problems = []
    for path in code_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            problems += citation_problems(path, number, line)
    assert problems == []


@pytest.mark.parametrize(("heading", "anchor"), [
    ("How a kiosk payment flows", "how-a-kiosk-payment-flows"),
    ("3. Alma calls per completed payment", "3-alma-calls-per-completed-payment"),
    ("End-to-end payments on one `patronpay serve`", "end-to-end-payments-on-one-patronpay-serve"),
    ("Duplicates, order and the answer", "duplicates-order-and-the-answer"),
    ("Where the real behaviour is unknown", "where-the-real-behaviour-is-unknown"),
    ("Fees page: GET /api/fees", "fees-page-get-apifees"),
])
def test_anchors_are_githubs(heading: str, anchor: str):
    assert github_slug(heading) == anchor


def test_the_checker_catches_what_it_must(tmp_path: Path):
    """The citation check fails on each kind of bad citation, and passes a good one."""
    code = ROOT / "proxy" / "x.py"
    assert citation_problems(code, 1, "see docs/cashnet.md#notification-checks") == []
    # Pieced together, so this file does not carry the bad citations it tests.
    bad = [
        "see " + "DESIGN" + ".md " + SECTION_SIGN + "5",
        "see specs" + "/alma.md " + SECTION_SIGN + "8",
        "see .." + "/shared/" + "DESIGN" + ".md",
        "as in spec " + SECTION_SIGN + "9.4",
        "see docs/cashnet.md " + SECTION_SIGN + "4",
        "see docs" + "/cashnet.md#no-such-heading",
        "see docs" + "/no-such-page.md",
    ]
    for line in bad:
        assert citation_problems(code, 1, line), line
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [bad](#nothing) [gone](missing.md)\n")
    found = [link_problem(link) for link in relative_links(page)]
    assert found[0] is None and "no heading" in found[1] and found[2] == "no such file"


def test_kiosk_settings_table_is_current():
    """docs/kiosk.md carries the generated kiosk table. Regenerate with: python -m kiosk.settings"""
    from kiosk.settings import reference_table

    assert reference_table() in (ROOT / "docs" / "kiosk.md").read_text(encoding="utf-8")
