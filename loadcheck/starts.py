"""Start simulated operations, count how the deployment answered, and cancel them again."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from loadcheck.client import TIMEOUT_SECONDS, describe, json_or_none, reason

REFUSALS = ("rate_limited", "concurrency_limit")


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
        """Start one simulated operation lasting `duration` seconds."""
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
        code: [answer for answer in answers if answer.refused_as == code] for code in REFUSALS
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
