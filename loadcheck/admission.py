"""Checks 3 and 4: the deployment keeps its rate limit and its slot count under real starts.

The concurrency check runs first, in as fresh a rate-limit window as the client has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from loadcheck.configuration import WINDOW_SECONDS, Limits
from loadcheck.report import CheckFailed, Outcome
from loadcheck.starts import StartAnswer, Starts, tally

SHORT_SECONDS = 0.1  # rate-limit starts: over at once, so they hardly hold a slot
LONG_SECONDS = 5.0  # concurrency starts: still holding their slots when the last one arrives
EXTRA_STARTS = 2  # concurrency starts beyond the slot count
FULL_POOL_PAUSE_SECONDS = 0.5  # after a refusal for a full pool, before the next start


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
    counts = tally(starts_past_a_full_pool(starts, limit + 1))
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


def starts_past_a_full_pool(starts: Starts, wanted: int) -> list[StartAnswer]:
    """Send short starts until `wanted` were answered other than 429 concurrency_limit.

    A deployment gives back the start of a refusal for a full pool, so such refusals
    say nothing of the rate limit: wait a moment (the slots of the operations just
    cancelled come free) and send another, at most three times as many in all.
    """
    answers: list[StartAnswer] = []
    while len(answers) < 3 * wanted:
        answer = starts.start(SHORT_SECONDS)
        answers.append(answer)
        if answer.refused_as == "concurrency_limit":
            time.sleep(FULL_POOL_PAUSE_SECONDS)
        elif sum(a.refused_as != "concurrency_limit" for a in answers) == wanted:
            break
    return answers


def retry_after_text(values: list[int | None]) -> str:
    """Say the range of Retry-After values seen, e.g. 'Retry-After 3 to 5 s'."""
    known = sorted({value for value in values if value is not None})
    if not known:
        return "no Retry-After"
    span = f"{known[0]}" if len(known) == 1 else f"{known[0]} to {known[-1]}"
    return f"Retry-After {span} s"


def missing_retry_after(counts: dict[str, Any], code: str) -> str | None:
    """Say how many refusals with `code` lacked a usable Retry-After, if any did."""
    missing = sum(1 for value in counts[f"{code}_retry_after"] if value is None)
    if not missing:
        return None
    return f"{missing} refused with 429 {code} lacked a Retry-After in whole seconds"
