"""Validate a running coordhub over HTTP: configuration, speed, both limits and polling.

Each check is one function that returns an Outcome when the deployment behaves
and raises CheckFailed, with what it saw, when it does not. `run` calls them in
order, cancels every operation they started, and returns a Report that
`write_report` saves as JSON and Markdown.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

RESULTS_FILE = "performance_test_results.json"
SUMMARY_FILE = "performance_test_summary.md"
TIMEOUT_SECONDS = 10.0
WINDOW_SECONDS = 60  # coordhub's rate limits count in one-minute windows
SHORT_SECONDS = 0.1  # rate-limit starts: over at once, so they hardly hold a slot
LONG_SECONDS = 5.0  # concurrency starts: still holding their slots when the last one arrives
EXTRA_STARTS = 2  # concurrency starts beyond the slot count
MAX_ERROR_RATE = 0.05
POLL_HORIZON_SECONDS = 600
FIXED_POLL_SECONDS = 2
REQUIRED_POLL_SAVING = 0.5


class Unreachable(Exception):
    """The deployment did not answer at all."""


class Declined(Exception):
    """The user chose not to spend the client's start budget."""


class CheckFailed(Exception):
    """The deployment does not behave as the check requires; carries what was seen."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result or {}


@dataclass(frozen=True)
class Outcome:
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


@dataclass(frozen=True)
class Limits:
    """What the checks hold the deployment to: the expected value if given, else the reported."""

    rate_limiting_enabled: bool | None
    requests_per_minute: int | None
    slots: int | None
    polling: dict[str, Any] | None


def connect(url: str, api_key: str | None = None) -> httpx.Client:
    """Return a client for the deployment at `url`, sending the API key if given."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT_SECONDS)


def reason(exc: httpx.TransportError) -> str:
    """Say why a request got no answer, e.g. 'connection refused'."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {TIMEOUT_SECONDS:g} s"
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
    return text[:1].lower() + text[1:]


def describe(response: httpx.Response) -> str:
    """Name a response by status and, for a coordhub error, its code and detail."""
    body = json_or_none(response)
    if isinstance(body, dict) and "error" in body:
        detail = str(body.get("detail", "")).rstrip(".")
        return f"{response.status_code} {body['error']}: {detail}".rstrip(": ")
    return f"{response.status_code}"


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


# 1. Configuration


def check_configuration(
    client: httpx.Client, expect_rpm: int | None, expect_slots: int | None
) -> Outcome:
    """Health and performance answer, and the reported limits are the expected ones."""
    try:
        health = client.get("/api/health")
    except httpx.TransportError as exc:
        raise Unreachable(f"coordhub at {client.base_url} did not answer: {reason(exc)}") from exc
    performance = client.get("/api/performance")
    problems = []
    health_body = json_or_none(health)
    health_status = health_body.get("status") if isinstance(health_body, dict) else None
    if health.status_code != 200 or health_status != "healthy":
        failed = ", ".join(health_body.get("failed", [])) if health_status else ""
        problems.append(
            f"GET /api/health answered {describe(health)}"
            + (f" ({health_status}: {failed} down)" if failed else "")
        )
    body = json_or_none(performance)
    if performance.status_code != 200 or not isinstance(body, dict):
        hint = " (pass --api-key)" if performance.status_code == 401 else ""
        problems.append(f"GET /api/performance answered {describe(performance)}{hint}")
        body = {}
    reported = reported_limits(body)
    result = {"health": health_status, "reported": reported, "expected": {}}
    if expect_rpm is not None:
        result["expected"]["requests_per_minute"] = expect_rpm
        if reported["requests_per_minute"] != expect_rpm:
            problems.append(
                f"{reported['requests_per_minute']} starts per minute reported, "
                f"{expect_rpm} expected"
            )
        if reported["rate_limiting_enabled"] is False:
            problems.append(f"rate limiting is off, {expect_rpm} starts per minute expected")
    if expect_slots is not None:
        result["expected"]["max_concurrent_operations"] = expect_slots
        if reported["max_concurrent_operations"] != expect_slots:
            problems.append(
                f"{reported['max_concurrent_operations']} slots reported, {expect_slots} expected"
            )
    if problems:
        raise CheckFailed("; ".join(problems), result)
    rate = (
        f"{reported['requests_per_minute']} starts/min"
        if reported["rate_limiting_enabled"]
        else "rate limiting off"
    )
    return Outcome(
        f"{reported['profile']} profile: {rate}, {reported['max_concurrent_operations']} slots, "
        f"health {health_status}",
        result,
    )


def reported_limits(performance: dict[str, Any]) -> dict[str, Any]:
    """Pick the limits out of a GET /api/performance body (None where missing)."""
    rate = performance.get("rate_limiting") or {}
    concurrency = performance.get("concurrency_control") or {}
    return {
        "profile": (performance.get("system_info") or {}).get("profile"),
        "rate_limiting_enabled": rate.get("enabled"),
        "requests_per_minute": rate.get("requests_per_minute"),
        "max_concurrent_operations": concurrency.get("max_concurrent_operations"),
        "active_operations": concurrency.get("active_operations"),
        "polling": performance.get("polling"),
    }


def limits_from(
    configuration: dict[str, Any], expect_rpm: int | None, expect_slots: int | None
) -> Limits:
    reported = configuration.get("reported") or {}
    return Limits(
        rate_limiting_enabled=reported.get("rate_limiting_enabled"),
        requests_per_minute=expect_rpm or reported.get("requests_per_minute"),
        slots=expect_slots or reported.get("max_concurrent_operations"),
        polling=reported.get("polling"),
    )


# 2. Response times


def check_response_times(client: httpx.Client, requests: int, max_average: float) -> Outcome:
    """GET /api/health `requests` times; fail on a slow average or too many errors."""
    seconds, errors = [], []
    for _ in range(requests):
        began = time.perf_counter()
        try:
            response = client.get("/api/health")
        except httpx.TransportError as exc:
            errors.append(reason(exc))
            continue
        seconds.append(time.perf_counter() - began)
        if response.status_code != 200:
            errors.append(describe(response))
    result: dict[str, Any] = {
        "requests": requests,
        "errors": len(errors),
        "error_rate": len(errors) / requests,
    }
    if seconds:
        result |= {
            "average_seconds": round(sum(seconds) / len(seconds), 4),
            "p50_seconds": round(percentile(seconds, 50), 4),
            "p95_seconds": round(percentile(seconds, 95), 4),
            "max_seconds": round(max(seconds), 4),
        }
    if errors:
        result["first_error"] = errors[0]
    summary = f"{requests} GETs of /api/health: " + (
        f"average {ms(result['average_seconds'])}, p50 {ms(result['p50_seconds'])}, "
        f"p95 {ms(result['p95_seconds'])}, max {ms(result['max_seconds'])}, "
        if seconds
        else ""
    )
    summary += f"{result['error_rate']:.0%} errors"
    if result["error_rate"] > MAX_ERROR_RATE:
        raise CheckFailed(
            f"{summary}; more than {MAX_ERROR_RATE:.0%} failed, first: {errors[0]}", result
        )
    if result["average_seconds"] > max_average:
        raise CheckFailed(f"{summary}; the average is above {max_average:g} s", result)
    return Outcome(summary, result)


def percentile(values: list[float], percent: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# Starting and cancelling operations (checks 3 and 4)


@dataclass(frozen=True)
class StartAnswer:
    """How the deployment answered one POST /api/operations."""

    status: int | None  # None: no answer
    error: str | None  # the refusal's error code, or why there was no answer
    retry_after: int | None = None
    operation_id: str | None = None

    @property
    def refused_as(self) -> str | None:
        return self.error if self.status == 429 else None

    def describe(self) -> str:
        return f"{self.status} {self.error}" if self.status else f"no answer: {self.error}"


class Starts:
    """Start simulated operations and remember each admitted one, to cancel it later."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.started: list[str] = []

    def start(self, duration: float) -> StartAnswer:
        body = {"kind": "simulated", "params": {"duration": duration}}
        try:
            response = self.client.post("/api/operations", json=body)
        except httpx.TransportError as exc:
            return StartAnswer(None, reason(exc))
        answer = json_or_none(response)
        answer = answer if isinstance(answer, dict) else {}
        if response.status_code == 202 and "id" in answer:
            self.started.append(answer["id"])  # list.append is atomic: threads may share this
            return StartAnswer(202, None, operation_id=answer["id"])
        retry_after = response.headers.get("Retry-After", "")
        return StartAnswer(
            response.status_code,
            answer.get("error", "no error code"),
            int(retry_after) if retry_after.isdigit() else None,
        )

    def in_parallel(self, count: int, duration: float) -> list[StartAnswer]:
        """Send `count` starts at the same instant from as many threads."""
        barrier = threading.Barrier(count)

        def start_together(_: int) -> StartAnswer:
            barrier.wait(timeout=TIMEOUT_SECONDS)
            return self.start(duration)

        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(start_together, range(count)))

    def cancel_all(self) -> dict[str, Any]:
        """Cancel every operation started so far; one that already ended (409) is fine."""
        cancelled, finished, failures = 0, 0, []
        while self.started:
            operation_id = self.started.pop()
            try:
                response = self.client.post(f"/api/operations/{operation_id}/cancel")
            except httpx.TransportError as exc:
                failures.append(f"{operation_id}: {reason(exc)}")
                continue
            if response.status_code == 200:
                cancelled += 1
            elif response.status_code == 409:
                finished += 1
            else:
                failures.append(f"{operation_id}: {describe(response)}")
        return {"cancelled": cancelled, "already_finished": finished, "not_cancelled": failures}


def tally(answers: list[StartAnswer]) -> dict[str, Any]:
    """Count start answers by kind, with the Retry-After values of the refusals."""
    refused = {
        code: [answer for answer in answers if answer.refused_as == code]
        for code in ("rate_limited", "concurrency_limit")
    }
    return {
        "sent": len(answers),
        "admitted": sum(1 for answer in answers if answer.status == 202),
        **{code: len(found) for code, found in refused.items()},
        **{
            f"{code}_retry_after": [answer.retry_after for answer in found]
            for code, found in refused.items()
        },
        "unexpected": [
            answer.describe()
            for answer in answers
            if answer.status != 202 and answer.refused_as not in refused
        ],
    }


def retry_after_text(values: list[int | None]) -> str:
    known = sorted({value for value in values if value is not None})
    if not known:
        return "no Retry-After"
    span = f"{known[0]}" if len(known) == 1 else f"{known[0]} to {known[-1]}"
    return f"Retry-After {span} s"


def missing_retry_after(counts: dict[str, Any], code: str) -> str | None:
    missing = sum(1 for value in counts[f"{code}_retry_after"] if value is None)
    if not missing:
        return None
    return f"{missing} refused with 429 {code} lacked a Retry-After in whole seconds"


# 4. Concurrency (run before the rate-limit check, in as fresh a window as the client has)


def check_concurrency(starts: Starts, limits: Limits, echo: Callable[[str], None]) -> Outcome:
    """More parallel long starts than slots: at most `slots` admitted, the rest concurrency_limit.

    Starts refused as rate_limited are left out of the verdict; if too few remain
    and a fresh window would be enough, wait for it (Retry-After) and try once more.
    """
    if limits.slots is None:
        raise CheckFailed("cannot run: the slot count is unknown; pass --expect-slots")
    slots, count = limits.slots, limits.slots + EXTRA_STARTS
    answers = starts.in_parallel(count, LONG_SECONDS)
    counts = tally(answers)
    wait = max(filter(None, counts["rate_limited_retry_after"]), default=None)
    fresh_window_suffices = (limits.requests_per_minute or 0) > slots
    if count - counts["rate_limited"] <= slots and wait and fresh_window_suffices:
        starts.cancel_all()
        echo(
            f"      {counts['rate_limited']} of {count} concurrency starts were refused as "
            f"rate_limited (this client's budget was spent earlier); "
            f"waiting {wait} s for a fresh window (Retry-After) and trying once more"
        )
        time.sleep(min(wait, WINDOW_SECONDS + 1))
        answers = starts.in_parallel(count, LONG_SECONDS)
        counts = tally(answers)
    judged = count - counts["rate_limited"]
    result = {"slots": slots, "duration_seconds_each": LONG_SECONDS, **counts}
    if limits.rate_limiting_enabled:
        result["budget_spent"] = judged
    summary = (
        f"{counts['admitted']} of {count} parallel {LONG_SECONDS:g} s starts admitted "
        f"for {slots} slots, {counts['concurrency_limit']} refused with 429 concurrency_limit "
        f"({retry_after_text(counts['concurrency_limit_retry_after'])})"
    )
    if counts["rate_limited"]:
        summary += f", {counts['rate_limited']} refused as rate_limited left out"
    if limits.rate_limiting_enabled:
        summary += f"; spent {judged} of {limits.requests_per_minute} starts/min"
    problems = []
    if counts["unexpected"]:
        problems.append("unexpected answers: " + ", ".join(counts["unexpected"]))
    if counts["admitted"] > slots:
        problems.append(f"{counts['admitted']} admitted, more than the {slots} slots")
    elif judged <= slots:
        problems.append(
            f"only {judged} start(s) got past the rate limit, too few to exceed {slots} slots"
        )
    problems.append(missing_retry_after(counts, "concurrency_limit"))
    problems = [problem for problem in problems if problem]
    if problems:
        raise CheckFailed(f"{summary}; " + "; ".join(problems), result)
    return Outcome(summary, result)


# 3. Rate limiting


def check_rate_limiting(starts: Starts, limits: Limits, spent_earlier: int = 0) -> Outcome:
    """Limit + 1 rapid short starts: at most the limit admitted, at least one rate_limited.

    `spent_earlier` (starts the concurrency check got past the limit) only explains
    the figures: the verdict holds whatever was left of the window's budget.
    """
    if limits.rate_limiting_enabled is False:
        raise CheckFailed(
            "rate limiting is off: GET /api/performance reports enabled false; no starts sent",
            {"enabled": False},
        )
    if limits.requests_per_minute is None:
        raise CheckFailed("cannot run: the rate limit is unknown; pass --expect-rpm")
    limit = limits.requests_per_minute
    counts = tally([starts.start(SHORT_SECONDS) for _ in range(limit + 1)])
    result = {"limit_per_minute": limit, "duration_seconds_each": SHORT_SECONDS, **counts}
    summary = (
        f"{counts['admitted']} of {counts['sent']} starts admitted, "
        f"{counts['rate_limited']} refused with 429 rate_limited "
        f"({retry_after_text(counts['rate_limited_retry_after'])})"
    )
    if counts["concurrency_limit"]:
        summary += f", {counts['concurrency_limit']} refused with 429 concurrency_limit"
    if spent_earlier:
        summary += f"; the concurrency check had spent {spent_earlier} of the {limit} first"
        result["spent_earlier"] = spent_earlier
    problems = []
    if counts["unexpected"]:
        problems.append("unexpected answers: " + ", ".join(counts["unexpected"]))
    if counts["admitted"] > limit:
        problems.append(f"more than the limit of {limit} per minute admitted")
    if not counts["rate_limited"]:
        problems.append(f"no 429 rate_limited after {counts['sent']} starts")
    problems.append(missing_retry_after(counts, "rate_limited"))
    problems = [problem for problem in problems if problem]
    if problems:
        raise CheckFailed(f"{summary}; " + "; ".join(problems), result)
    return Outcome(summary, result)


# 5. Polling


def backoff_polls(
    initial_ms: float,
    max_ms: float,
    multiplier: float,
    max_attempts: int,
    horizon_seconds: float = POLL_HORIZON_SECONDS,
) -> int:
    """Count the polls of the backoff ladder in `horizon_seconds` without a change of state."""
    elapsed_ms, interval_ms, polls = 0.0, float(initial_ms), 0
    while polls < max_attempts:  # after max_attempts unchanged polls, polling pauses
        elapsed_ms += interval_ms
        if elapsed_ms > horizon_seconds * 1000:
            break
        polls += 1
        interval_ms = min(interval_ms * multiplier, max_ms)
    return polls


def fixed_polls(
    interval_seconds: float = FIXED_POLL_SECONDS, horizon_seconds: float = POLL_HORIZON_SECONDS
) -> int:
    return int(horizon_seconds // interval_seconds)


def check_polling(limits: Limits) -> Outcome:
    """Replay the configured backoff over ten quiet minutes against fixed 2-second polling."""
    ladder = limits.polling
    names = ("initial_interval_ms", "max_interval_ms", "multiplier", "max_attempts")
    if not isinstance(ladder, dict) or any(name not in ladder for name in names):
        raise CheckFailed("cannot run: GET /api/performance reported no polling settings")
    backoff = backoff_polls(*(ladder[name] for name in names))
    fixed = fixed_polls()
    saving = 1 - backoff / fixed
    result = {
        "ladder": {name: ladder[name] for name in names},
        "simulated_seconds": POLL_HORIZON_SECONDS,
        "fixed_interval_seconds": FIXED_POLL_SECONDS,
        "fixed_polls": fixed,
        "backoff_polls": backoff,
        "saving": round(saving, 3),
    }
    summary = (
        f"{backoff} polls with backoff vs {fixed} at a fixed {FIXED_POLL_SECONDS} s "
        f"over {POLL_HORIZON_SECONDS // 60} simulated minutes, {saving:.0%} fewer"
    )
    if saving < REQUIRED_POLL_SAVING:
        raise CheckFailed(f"{summary}; at least {REQUIRED_POLL_SAVING:.0%} fewer needed", result)
    return Outcome(summary, result)


# Running and reporting


def run_check(name: str, check: Callable[[], Outcome]) -> CheckResult:
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


def run(
    client: httpx.Client,
    *,
    requests: int = 50,
    max_average: float = 2.0,
    expect_rpm: int | None = None,
    expect_slots: int | None = None,
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
    record(run_check("polling", lambda: check_polling(limits)))
    report.duration_seconds = time.monotonic() - began
    return report


def cleanup(starts: Starts, check: CheckResult, echo: Callable[[str], None]) -> None:
    """Cancel what `check` started, note it in its result, and warn of what could not be."""
    cancelled = starts.cancel_all()
    check.result["cleanup"] = cancelled
    for failure in cancelled["not_cancelled"]:
        echo(f"      could not cancel operation {failure}")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_report(report: Report, directory: Path) -> tuple[Path, Path]:
    """Write the JSON results and the Markdown summary into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    results, summary = directory / RESULTS_FILE, directory / SUMMARY_FILE
    results.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    summary.write_text(summary_markdown(report))
    return results, summary


def summary_markdown(report: Report) -> str:
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
