"""Run the five checks in order, after saying what start budget they will spend."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from loadcheck.admission import (
    EXTRA_STARTS,
    LONG_SECONDS,
    SHORT_SECONDS,
    check_concurrency,
    check_rate_limiting,
)
from loadcheck.client import reason
from loadcheck.configuration import WINDOW_SECONDS, Limits, check_configuration, limits_from
from loadcheck.polling import POLL_WINDOW_SECONDS, check_polling
from loadcheck.report import CheckFailed, CheckResult, Outcome, Report, now
from loadcheck.starts import Starts
from loadcheck.timing import check_response_times


class Declined(Exception):
    """The user chose not to spend the client's start budget."""


def run(
    client: httpx.Client,
    *,
    requests: int = 50,
    max_average: float = 2.0,
    expect_rpm: int | None = None,
    expect_slots: int | None = None,
    poll_window: float = POLL_WINDOW_SECONDS,
    confirm: Callable[[str], bool],
    echo: Callable[[str], None],
) -> Report:
    """Run the five checks against the deployment, echoing one line per check.

    Raises Unreachable when the deployment does not answer, and Declined when
    `confirm` refuses the spending plan (nothing has been started then).
    """
    began = time.monotonic()
    report = Report(base_url=str(client.base_url).rstrip("/"), timestamp=now())

    def record(result: CheckResult) -> None:
        report.checks.append(result)
        echo(result.line())

    record(
        run_check("configuration", lambda: check_configuration(client, expect_rpm, expect_slots))
    )
    limits = limits_from(report.checks[0].result, expect_rpm, expect_slots)
    record(run_check("response times", lambda: check_response_times(client, requests, max_average)))
    total, plan = spending_plan(limits)
    asked_at = time.monotonic()
    if total and not confirm(plan):
        raise Declined()
    began += time.monotonic() - asked_at
    starts = Starts(client)
    try:
        record(run_check("concurrency", lambda: check_concurrency(starts, limits, echo)))
        cleanup(starts, report.checks[-1], echo)
        spent = report.checks[-1].result.get("budget_spent", 0)
        record(run_check("rate limiting", lambda: check_rate_limiting(starts, limits, spent)))
        cleanup(starts, report.checks[-1], echo)
    finally:
        starts.cancel_all()
    record(run_check("polling", lambda: check_polling(client, limits, poll_window)))
    report.duration_seconds = time.monotonic() - began
    return report


def run_check(name: str, check: Callable[[], Outcome]) -> CheckResult:
    """Run one check, timing it; a failure or a lost connection becomes a failed result."""
    began = time.monotonic()
    try:
        outcome = check()
    except CheckFailed as exc:
        return CheckResult(name, False, str(exc), time.monotonic() - began, exc.result)
    except httpx.TransportError as exc:
        return CheckResult(name, False, f"no answer: {reason(exc)}", time.monotonic() - began)
    return CheckResult(name, True, outcome.summary, time.monotonic() - began, outcome.result)


def spending_plan(limits: Limits) -> tuple[int, str]:
    """Return how many operations the starting checks may start, and say so in a sentence."""
    concurrent = limits.slots + EXTRA_STARTS if limits.slots else 0
    rapid = (
        limits.requests_per_minute + 1
        if limits.requests_per_minute and limits.rate_limiting_enabled is not False
        else 0
    )
    total = concurrent + rapid
    text = (
        f"loadcheck will now start up to {total} simulated operations as this client: "
        f"{concurrent} at once lasting {LONG_SECONDS:g} s (concurrency), then {rapid} in a row "
        f"lasting {SHORT_SECONDS:g} s (rate limiting), and cancel each one at once."
    )
    if limits.rate_limiting_enabled and limits.requests_per_minute:
        text += (
            f" That spends this client's whole start budget ({limits.requests_per_minute} per "
            f"minute): its other starts are refused for up to {WINDOW_SECONDS} s. If the budget "
            f"is already spent, the concurrency check waits for the next window and starts its "
            f"{concurrent} again."
        )
    return total, text


def cleanup(starts: Starts, check: CheckResult, echo: Callable[[str], None]) -> None:
    """Cancel what `check` started, note it in its result, and warn of what could not be."""
    cancelled = starts.cancel_all()
    check.result["cleanup"] = cancelled
    for failure in cancelled["not_cancelled"]:
        echo(f"      could not cancel operation {failure}")
