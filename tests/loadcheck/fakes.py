"""In-process coordhub deployments for checking the checks without a server."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import httpx

from loadcheck.configuration import Limits
from loadcheck.polling import CONTENT_HEADER, STATE_HEADER

DEFAULT_POLLING = {
    "initial_interval_ms": 5000,
    "max_interval_ms": 30000,
    "multiplier": 1.2,
    "max_attempts": 100,
    "ladder_ms": [5000, 6000, 7200, 8640, 10368, 12442, 14930, 17916, 21499, 25799, 30000],
}

Fragment = Callable[[httpx.Request], httpx.Response]


def quiet_fragment(request: httpx.Request) -> httpx.Response:
    """The live fragment of a deployment where nothing changes: version v1, 204 when shown."""
    headers = {CONTENT_HEADER: "v1", STATE_HEADER: "s1"}
    if request.headers.get(CONTENT_HEADER) == "v1":
        return httpx.Response(204, headers=headers)
    return httpx.Response(200, text="<section>live</section>", headers=headers)


def fake_deployment(
    *,
    enabled: bool = True,
    rpm: int = 5,
    slots: int = 3,
    answer: Callable[[int], str] = lambda number: "admit",
    polling: dict[str, Any] | None = None,
    fragment: Fragment = quiet_fragment,
) -> httpx.Client:
    """A client for an in-process coordhub reporting these limits.

    `answer(n)` decides the n-th start: "admit", "rate_limited" or "concurrency_limit".
    """
    numbers = itertools.count(1)
    lock = threading.Lock()

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/operations":
            with lock:
                number = next(numbers)
            verdict = answer(number)
            if verdict == "admit":
                return httpx.Response(202, json={"id": f"op-{number}"})
            return httpx.Response(429, json={"error": verdict}, headers={"Retry-After": "1"})
        if request.url.path.endswith("/cancel"):
            return httpx.Response(200, json={})
        if request.url.path == "/api/health":
            return httpx.Response(200, json={"status": "healthy", "failed": []})
        if request.url.path == "/dashboard/live/":
            return fragment(request)
        return httpx.Response(
            200,
            json={
                "rate_limiting": {"enabled": enabled, "requests_per_minute": rpm},
                "concurrency_control": {"max_concurrent_operations": slots},
                "polling": DEFAULT_POLLING if polling is None else polling,
                "system_info": {"profile": "testing"},
            },
        )

    return httpx.Client(base_url="http://coordhub.test", transport=httpx.MockTransport(handle))


def admit_first(admitted: int, after: int = 0) -> Callable[[int], str]:
    """Refuse the first `after` starts as rate_limited, admit `admitted`, refuse the rest."""

    def answer(number: int) -> str:
        if number <= after:
            return "rate_limited"
        return "admit" if number <= after + admitted else "concurrency_limit"

    return answer


def limits(**values: Any) -> Limits:
    defaults = {"rate_limiting_enabled": True, "requests_per_minute": 5, "slots": 3}
    return Limits(**(defaults | {"polling": None} | values))
