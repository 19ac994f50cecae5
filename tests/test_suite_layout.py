"""The suite collects the same way under `.venv/bin/pytest` (the README's command) and
`python -m pytest` (.ci/run's). Only the second puts the repository root on sys.path, so a
test that imports `tests.<module>` passes in CI and stops the README's command at collection.
Shared helpers live in tests/support/ and are imported as `support.<module>`."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT_QUALIFIED = re.compile(r"^\s*(from\s+tests[.\s]|import\s+tests\b)", re.MULTILINE)


def test_no_test_imports_through_the_repository_root():
    found = [str(path.relative_to(TESTS)) for path in sorted(TESTS.rglob("*.py"))
             if "node_modules" not in path.parts
             and ROOT_QUALIFIED.search(path.read_text(encoding="utf-8"))]
    assert found == [], "import these as support.<module> (tests/support/), not tests.<module>"


def test_the_check_sees_both_spellings():
    assert ROOT_QUALIFIED.search("from tests.test_alma_client import server\n")
    assert ROOT_QUALIFIED.search("import tests.support.alma\n")
    assert not ROOT_QUALIFIED.search("from support.alma import canned_alma\n")
    assert not ROOT_QUALIFIED.search("from testsuite import x\n")
