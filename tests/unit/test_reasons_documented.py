"""Every reason the code can put in a Backup's conditions is in the documented lists (README and
docs/recovery-and-rerun.md), so the list of stable reasons cannot drift from the code again."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "tibackup"
# Where a reason is given: an error class or keyword (reason = "X", reason="X"), a constant, or the
# status calls (report.failed/invalid("X"), controller.fail(backup, "X"), set_condition(…, Phase.X, "X")).
PATTERNS = (
    r'\breason\s*=\s*"([A-Z][A-Za-z]+)"',
    r'_REASON\s*=\s*"([A-Z][A-Za-z]+)"',
    r'\.(?:failed|invalid)\(\s*"([A-Z][A-Za-z]+)"',
    r'\.fail\(\s*\w+,\s*"([A-Z][A-Za-z]+)"',
    r'Phase\.\w+,\s*"([A-Z][A-Za-z]+)"',
)


def reasons_in_code() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in PATTERNS:
            for match in re.finditer(pattern, text):
                found.setdefault(match.group(1), set()).add(str(path.relative_to(ROOT)))
    return found


def _backticked(text: str) -> set[str]:
    return set(re.findall(r"`([A-Z][A-Za-z]+)`", text))


def readme_reasons() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("- **Failure reasons**")
    end = text.index("\n- **", start + 1)
    return _backticked(text[start:end])


def docs_reasons() -> set[str]:
    text = (ROOT / "docs" / "recovery-and-rerun.md").read_text(encoding="utf-8")
    start = text.index("## Reasons")
    end = text.index("\n## ", start + 1)
    return _backticked(text[start:end])


# Reasons of conditions that are not failures (Scheduled, Prepare, Running, Complete, Clean, and the
# GC restore condition): documented in the docs' list only, the README lists the failure reasons.
PROGRESS = {
    "Scheduled",
    "JobCreated",
    "Preparing",
    "Running",
    "Complete",
    "Deleting",
    "GCLifeTimeNotRestored",
}


def test_the_scan_finds_reasons_of_every_kind() -> None:
    found = reasons_in_code()
    for reason in ("StorageError", "ReadTimeout", "JobFailed", "InternalError", "VerifyFailed", "Preparing"):
        assert reason in found, reason


def test_every_reason_in_the_code_is_documented() -> None:
    found = reasons_in_code()
    documented = docs_reasons()
    missing = {r: sorted(paths) for r, paths in found.items() if r not in documented}
    assert not missing, f"document these reasons in docs/recovery-and-rerun.md: {missing}"
    failures = set(found) - PROGRESS
    missing_readme = sorted(failures - readme_reasons())
    assert not missing_readme, f"add these to the README's failure reasons: {missing_readme}"


def test_documented_reasons_exist() -> None:
    found = reasons_in_code()
    stale = sorted((docs_reasons() | readme_reasons()) - set(found) - {"GCLifeTimeRestorePending"})
    assert not stale, f"documented but never set by the code: {stale}"
