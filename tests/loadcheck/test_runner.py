"""Running the checks in order, and the spending plan asked for first."""

from __future__ import annotations

import pytest

from loadcheck.runner import Declined, run, spending_plan
from tests.loadcheck.fakes import admit_first, fake_deployment, limits


def test_run_starts_nothing_when_the_plan_is_declined():
    client = fake_deployment(answer=lambda number: pytest.fail("started an operation"))
    plans = []

    with pytest.raises(Declined):
        run(client, requests=3, confirm=lambda plan: plans.append(plan) or False, echo=print)

    assert "start up to 11 simulated operations" in plans[0]
    assert "whole start budget (5 per minute)" in plans[0]


def test_run_reports_all_five_checks_against_a_deployment_that_keeps_its_limits():
    refusing_after_three = admit_first(3)
    client = fake_deployment(answer=lambda number: refusing_after_three((number - 1) % 5 + 1))
    lines = []

    report = run(client, requests=3, poll_window=0.05, confirm=lambda plan: True, echo=lines.append)

    assert [check.name for check in report.checks] == [
        "configuration",
        "response times",
        "concurrency",
        "rate limiting",
        "polling",
    ]
    assert [check.name for check in report.failed] == ["rate limiting"]  # the fake never limits
    assert [line.split()[0] for line in lines if "  (" in line] == ["PASS"] * 3 + ["FAIL", "PASS"]


def test_the_plan_leaves_out_the_rate_limit_starts_when_rate_limiting_is_off():
    total, text = spending_plan(limits(rate_limiting_enabled=False))

    assert total == 5
    assert "5 at once lasting 5 s (concurrency), then 0 in a row" in text
    assert "start budget" not in text
