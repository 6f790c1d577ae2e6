"""Check 5: polling, replayed from the reported ladder and measured on the dashboard fragment.

The replay steps through the backoff ladder the deployment configures and renders
for the browser (`polling.ladder_ms` in GET /api/performance) over ten quiet
minutes, against a tab polling every 2 s. The measurement asks the dashboard's
live fragment what the leader tab asks: one full fetch, then conditional polls
carrying the content version it shows, which must be answered 204 while nothing
changed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from loadcheck.client import describe, reason
from loadcheck.configuration import Limits
from loadcheck.report import CheckFailed, Outcome
from loadcheck.timing import ms, percentile

POLL_HORIZON_SECONDS = 600
FIXED_POLL_SECONDS = 2
REQUIRED_POLL_SAVING = 0.5

FRAGMENT_PATH = "/dashboard/live/"
CONTENT_HEADER = "X-Coordhub-Content"
STATE_HEADER = "X-Coordhub-State"
POLL_WINDOW_SECONDS = 3.0
POLL_GAP_SECONDS = 0.2  # between polls: a few per second stays far below the read limit


def check_polling(
    client: httpx.Client, limits: Limits, window_seconds: float = POLL_WINDOW_SECONDS
) -> Outcome:
    """Replay the reported ladder against fixed polling, then measure the fragment's 204s."""
    parts: dict[str, Callable[[], Outcome]] = {
        "replayed": lambda: replay_ladder(limits.polling),
        "measured": lambda: measure_fragment(client, window_seconds),
    }
    sentences, result, failed = [], {}, False
    for name, part in parts.items():
        try:
            outcome = part()
        except CheckFailed as exc:
            sentences.append(str(exc))
            result[name], failed = exc.result, True
        else:
            sentences.append(outcome.summary)
            result[name] = outcome.result
    if failed:
        raise CheckFailed("; ".join(sentences), result)
    return Outcome("; ".join(sentences), result)


# The replay


def reported_ladder(polling: dict[str, Any] | None) -> tuple[list[int], int | None]:
    """Return the ladder (ms) and the pause (unchanged polls) from the reported polling block."""
    ladder = polling.get("ladder_ms") if isinstance(polling, dict) else None
    if not (isinstance(ladder, list) and ladder and all(is_positive_int(step) for step in ladder)):
        raise CheckFailed(
            "cannot replay the backoff: GET /api/performance reported no polling.ladder_ms "
            f"(a list of intervals in ms), got {ladder!r}"
        )
    max_attempts = polling.get("max_attempts")
    return ladder, max_attempts if is_positive_int(max_attempts) else None


def is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def backoff_polls(
    ladder_ms: Sequence[int],
    max_attempts: int | None = None,
    horizon_seconds: float = POLL_HORIZON_SECONDS,
) -> int:
    """Count the polls in `horizon_seconds` without a change of state.

    Like the browser: step through the ladder, stay on its last interval, and
    pause after `max_attempts` unchanged polls (never, if None).
    """
    elapsed_ms, polls = 0, 0
    while max_attempts is None or polls < max_attempts:
        elapsed_ms += ladder_ms[min(polls, len(ladder_ms) - 1)]
        if elapsed_ms > horizon_seconds * 1000:
            break
        polls += 1
    return polls


def fixed_polls(
    interval_seconds: float = FIXED_POLL_SECONDS, horizon_seconds: float = POLL_HORIZON_SECONDS
) -> int:
    """Count the polls in `horizon_seconds` at a fixed interval."""
    return int(horizon_seconds // interval_seconds)


def replay_ladder(polling: dict[str, Any] | None) -> Outcome:
    """Replay the reported ladder over ten quiet minutes against fixed 2-second polling."""
    ladder, max_attempts = reported_ladder(polling)
    backoff = backoff_polls(ladder, max_attempts)
    fixed = fixed_polls()
    saving = 1 - backoff / fixed
    result = {
        "ladder_ms": ladder,
        "max_attempts": max_attempts,
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


# The measurement


@dataclass(frozen=True)
class Poll:
    """One GET of the fragment: what was sent and what came back."""

    sent: str | None  # the content version the request carried
    status: int
    described: str
    seconds: float
    size: int  # body bytes
    content: str | None  # the answer's version headers
    state: str | None

    @property
    def versioned(self) -> bool:
        return bool(self.content and self.state)


def fetch_fragment(client: httpx.Client, version: str | None) -> Poll:
    """GET the fragment, conditionally when `version` is given."""
    headers = {CONTENT_HEADER: version} if version else {}
    began = time.perf_counter()
    try:
        response = client.get(FRAGMENT_PATH, headers=headers)
    except httpx.TransportError as exc:
        raise CheckFailed(f"GET {FRAGMENT_PATH} got no answer: {reason(exc)}") from exc
    return Poll(
        sent=version,
        status=response.status_code,
        described=describe(response),
        seconds=time.perf_counter() - began,
        size=len(response.content),
        content=response.headers.get(CONTENT_HEADER),
        state=response.headers.get(STATE_HEADER),
    )


def measure_fragment(
    client: httpx.Client,
    window_seconds: float = POLL_WINDOW_SECONDS,
    gap_seconds: float = POLL_GAP_SECONDS,
) -> Outcome:
    """Fetch the fragment, then poll it with its version for `window_seconds`: 204 if unchanged."""
    first = fetch_fragment(client, None)
    if first.status != 200:
        closed = first.status in (401, 403) or 300 <= first.status < 400
        hint = ""
        if closed and "Authorization" not in client.headers:
            hint = "; the dashboard is closed to this client: pass --api-key"
        raise CheckFailed(f"GET {FRAGMENT_PATH} answered {first.described}{hint}")
    if not first.versioned:
        raise CheckFailed(
            f"GET {FRAGMENT_PATH} answered 200 without {CONTENT_HEADER} and {STATE_HEADER}, "
            "so no poll can be conditional",
            {"first": answered([first])},
        )
    polls, version = [], first.content
    deadline = time.monotonic() + window_seconds
    while time.monotonic() < deadline:
        poll = fetch_fragment(client, version)
        polls.append(poll)
        if poll.status == 200 and poll.content:
            version = poll.content  # a change: the client now shows the new content
        time.sleep(max(0.0, min(gap_seconds, deadline - time.monotonic())))
    return judge_polls(first, polls, window_seconds)


def judge_polls(first: Poll, polls: list[Poll], window_seconds: float) -> Outcome:
    """Pass if every unchanged poll was answered 204, versioned and empty, and one was seen."""
    not_modified = [poll for poll in polls if poll.status == 204]
    full = [poll for poll in polls if poll.status == 200]
    unchanged_as_full = [poll for poll in full if poll.content == poll.sent]
    unversioned = [poll for poll in not_modified + full if not poll.versioned]
    with_body = [poll for poll in not_modified if poll.size]
    other = [poll.described for poll in polls if poll.status not in (200, 204)]
    result = {
        "window_seconds": window_seconds,
        "first": answered([first]),
        "polls": len(polls),
        "answered_204": answered(not_modified),
        "answered_200": answered(full),
        "changed": len(full) - len(unchanged_as_full),
        "unchanged_answered_200": len(unchanged_as_full),
        "without_version_headers": len(unversioned),
        "other_answers": other,
    }
    summary = (
        f"{len(polls)} conditional GETs of {FRAGMENT_PATH} in {window_seconds:g} s: "
        f"{len(not_modified)} answered 204 ({answer_text(not_modified)}), "
        f"{len(full)} answered 200 ({answer_text(full)}); "
        f"the full fragment {first.size} bytes in {ms(first.seconds)}"
    )
    problems = []
    if unchanged_as_full:
        problems.append(
            f"{len(unchanged_as_full)} unchanged poll(s) answered 200 with the content "
            "the client already showed, not 204"
        )
    if unversioned:
        problems.append(f"{len(unversioned)} answer(s) lacked {CONTENT_HEADER} or {STATE_HEADER}")
    if with_body:
        problems.append(f"{len(with_body)} 204 answer(s) carried a body")
    if other:
        counted = Counter(other).most_common()
        problems.append(
            "unexpected answers: " + ", ".join(f"{said} ({n} times)" for said, n in counted)
        )
    if not not_modified and not problems:
        problems.append("no poll answered 204: the content changed on every one")
    if problems:
        raise CheckFailed(f"{summary}; " + "; ".join(problems), result)
    return Outcome(summary, result)


def answered(polls: list[Poll]) -> dict[str, Any]:
    """Count `polls` with their body bytes and latency."""
    figures: dict[str, Any] = {"count": len(polls), "bytes": sum(poll.size for poll in polls)}
    if polls:
        seconds = [poll.seconds for poll in polls]
        figures["p50_seconds"] = round(percentile(seconds, 50), 4)
        figures["max_seconds"] = round(max(seconds), 4)
    return figures


def answer_text(polls: list[Poll]) -> str:
    if not polls:
        return "none"
    seconds = [poll.seconds for poll in polls]
    size = sum(poll.size for poll in polls)
    return f"{size} bytes, p50 {ms(percentile(seconds, 50))}, max {ms(max(seconds))}"
