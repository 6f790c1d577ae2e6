"""Check 1: the deployment answers, and reports the limits the other checks hold it to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from loadcheck.client import Unreachable, describe, json_or_none, reason
from loadcheck.report import CheckFailed, Outcome

WINDOW_SECONDS = 60  # coordhub's rate limits count in one-minute windows


@dataclass(frozen=True)
class Limits:
    """What the checks hold the deployment to: the expected value if given, else the reported."""

    rate_limiting_enabled: bool | None
    requests_per_minute: int | None
    slots: int | None
    polling: dict[str, Any] | None


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
    """The limits to hold the deployment to, from check 1's result and the expectations."""
    reported = configuration.get("reported") or {}
    return Limits(
        rate_limiting_enabled=reported.get("rate_limiting_enabled"),
        requests_per_minute=expect_rpm or reported.get("requests_per_minute"),
        slots=expect_slots or reported.get("max_concurrent_operations"),
        polling=reported.get("polling"),
    )
