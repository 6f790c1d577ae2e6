"""What a check found, the whole run's report, and the JSON and Markdown files it is saved as.

The JSON field names are the templates' (`tests`, `summary`, `status`): clients
that read `performance_test_results.json` keep working.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_FILE = "performance_test_results.json"
SUMMARY_FILE = "performance_test_summary.md"


class CheckFailed(Exception):
    """The deployment does not behave as the check requires; carries what was seen."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result or {}


@dataclass(frozen=True)
class Outcome:
    """What a check that passed found: a one-line summary and the figures behind it."""

    summary: str
    result: dict[str, Any]


@dataclass
class CheckResult:
    name: str
    passed: bool
    summary: str
    duration_seconds: float
    result: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "name": self.name,
            "status": "passed" if self.passed else "failed",
            "duration_seconds": round(self.duration_seconds, 3),
        }
        if not self.passed:
            record["error"] = self.summary
        if self.passed or self.result:
            record["result"] = self.result
        return record

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict}  {self.name:<15} ({self.summary})  {self.duration_seconds:.1f} s"


@dataclass
class Report:
    base_url: str
    timestamp: str
    checks: list[CheckResult] = field(default_factory=list)
    duration_seconds: float = 0.0

    @property
    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.passed]

    def as_json(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "base_url": self.base_url,
            "tests": [check.as_json() for check in self.checks],
            "summary": {
                "total": len(self.checks),
                "passed": len(self.checks) - len(self.failed),
                "failed": len(self.failed),
                "duration_seconds": round(self.duration_seconds, 3),
            },
        }


def now() -> str:
    """The current UTC time to the second, as ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_report(report: Report, directory: Path) -> tuple[Path, Path]:
    """Write the JSON results and the Markdown summary into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    results, summary = directory / RESULTS_FILE, directory / SUMMARY_FILE
    results.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    summary.write_text(summary_markdown(report))
    return results, summary


def summary_markdown(report: Report) -> str:
    """Render the report as a Markdown table, one row per check."""
    passed = len(report.checks) - len(report.failed)
    lines = [
        f"# coordhub loadcheck of {report.base_url}",
        "",
        f"{report.timestamp}: {passed} of {len(report.checks)} checks passed "
        f"in {report.duration_seconds:.1f} s.",
        "",
        "| check | status | seconds | details |",
        "|---|---|---|---|",
    ]
    for check in report.checks:
        details = check.summary.replace("|", "\\|")
        status = "passed" if check.passed else "**failed**"
        lines.append(f"| {check.name} | {status} | {check.duration_seconds:.1f} | {details} |")
    return "\n".join(lines) + "\n"
