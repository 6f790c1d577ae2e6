"""Check 2: response times of GET /api/health, and the statistics the checks report."""

from __future__ import annotations

import math
import time
from typing import Any

import httpx

from loadcheck.client import describe, reason
from loadcheck.report import CheckFailed, Outcome

MAX_ERROR_RATE = 0.05


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
    """Say `seconds` in whole milliseconds, e.g. '12 ms'."""
    return f"{seconds * 1000:.0f} ms"
