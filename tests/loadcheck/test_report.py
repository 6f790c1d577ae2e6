"""The report's JSON (the templates' field names) and its Markdown summary."""

from __future__ import annotations

import json

from loadcheck.report import RESULTS_FILE, SUMMARY_FILE, CheckResult, Report, write_report


def report() -> Report:
    return Report(
        base_url="http://coordhub.test",
        timestamp="2025-01-01T00:00:00+00:00",
        checks=[
            CheckResult("configuration", True, "testing profile", 0.01, {"health": "healthy"}),
            CheckResult("polling", False, "a | b failed", 3.2),
        ],
        duration_seconds=3.21,
    )


def test_a_failed_check_carries_its_error_and_a_passed_one_its_result():
    tests = report().as_json()["tests"]

    assert tests == [
        {
            "name": "configuration",
            "status": "passed",
            "duration_seconds": 0.01,
            "result": {"health": "healthy"},
        },
        {"name": "polling", "status": "failed", "duration_seconds": 3.2, "error": "a | b failed"},
    ]


def test_write_report_saves_json_and_a_markdown_table(tmp_path):
    results, summary = write_report(report(), tmp_path / "out")

    assert results == tmp_path / "out" / RESULTS_FILE
    assert json.loads(results.read_text())["summary"] == {
        "total": 2,
        "passed": 1,
        "failed": 1,
        "duration_seconds": 3.21,
    }
    assert summary == tmp_path / "out" / SUMMARY_FILE
    assert summary.read_text().splitlines()[2:] == [
        "2025-01-01T00:00:00+00:00: 1 of 2 checks passed in 3.2 s.",
        "",
        "| check | status | seconds | details |",
        "|---|---|---|---|",
        "| configuration | passed | 0.0 | testing profile |",
        "| polling | **failed** | 3.2 | a \\| b failed |",
    ]
