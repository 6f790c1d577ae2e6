"""Estimate when a slot is likely to come free, from what holds the slots now.

Each operation holding a slot under a live lease is expected to run for its
kind's median duration: `finished_at - started_at` over the last
`HISTORY_SIZE` completed operations of that kind, or `DEFAULT_EXPECTED_SECONDS`
while the kind has none. Its expected remaining time is that duration less the
time it has run (nothing yet for a queued holder), at least 1 s: one already
past its median is expected to end soon. The soonest holder answers. Lease
expiry plays no part, since every renewal would push the answer back.

Used only when a start is refused, so it may spend a query per distinct kind.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime

from operations.models import Operation, Slot, Status

# The completed operations of a kind whose median stands for its duration.
HISTORY_SIZE = 20
# The expected duration of a kind with no completed operation yet.
DEFAULT_EXPECTED_SECONDS = 30
MINIMUM_SECONDS = 1


@dataclass(frozen=True)
class Estimate:
    """When a slot is expected to free, in whole seconds, and how that was worked out."""

    seconds: int
    basis: str


@dataclass(frozen=True)
class KindDuration:
    """A kind's expected duration and the completed operations it comes from (none: default)."""

    kind: str
    seconds: float
    sample_size: int

    def describe(self) -> str:
        if not self.sample_size:
            return f"no completed {self.kind} operation yet"
        return f"{self.kind}: median of the last {self.sample_size} completed, {self.seconds:.1f} s"


def expected_free_in(now: datetime) -> Estimate:
    """Estimate how long until one of the slots held under a live lease comes free."""
    holders = list(
        Slot.objects.held()
        .exclude(lease_expires_at__lt=now)  # an expired lease is claimable already
        .values_list("operation__kind", "operation__started_at")
    )
    if not holders:
        return Estimate(MINIMUM_SECONDS, "no slot is held under a live lease, so one may free now")
    durations = {kind: kind_duration(kind) for kind in {kind for kind, _ in holders}}
    remaining, kind = min(
        (remaining_seconds(durations[kind], started_at, now), kind) for kind, started_at in holders
    )
    seconds = max(MINIMUM_SECONDS, math.ceil(remaining))
    return Estimate(seconds, basis(durations[kind], len(holders), overdue=remaining <= 0))


def kind_duration(kind: str) -> KindDuration:
    """The median duration of the kind's last completed operations, or the default."""
    recent = (
        Operation.objects.filter(kind=kind, status=Status.COMPLETED)
        .exclude(started_at=None)
        .exclude(finished_at=None)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:HISTORY_SIZE]
    )
    durations = [(finished - started).total_seconds() for started, finished in recent]
    if not durations:
        return KindDuration(kind, DEFAULT_EXPECTED_SECONDS, 0)
    return KindDuration(kind, statistics.median(durations), len(durations))


def remaining_seconds(expected: KindDuration, started_at: datetime | None, now: datetime) -> float:
    """What is left of the expected duration, below 0 once past it (queued: all of it)."""
    elapsed = max(0.0, (now - started_at).total_seconds()) if started_at else 0.0
    return expected.seconds - elapsed


def basis(soonest: KindDuration, holder_count: int, *, overdue: bool) -> str:
    """Say in one sentence how the estimate was made."""
    if holder_count == 1:
        who = "the one operation holding a slot"
    else:
        who = f"the soonest of {holder_count} operations holding a slot"
    if soonest.sample_size:
        expected = "its kind's median duration"
    else:
        expected = f"the default duration of {DEFAULT_EXPECTED_SECONDS} s"
    if overdue:
        return f"{who} has run past {expected}, so is expected to end soon ({soonest.describe()})"
    return f"{who} to reach {expected} ({soonest.describe()})"
