"""The charts' data: slots in use, outcomes and refusals per interval, and durations by kind.

A range ("hour", "day") is cut into intervals aligned on the clock (UTC): the
last one is the current, partial one, so an operation that just ended stays in
its interval from one drawing to the next. Every figure comes from a few
aggregate queries over the rows an index finds (`finished_at` for the range's
finished operations, `status` for the active ones, (minute, reason) for the
refusals, (kind, status, finished_at) for one kind's durations): the database
sums and counts, a few grouped rows come back, and params and result are never read.

Slots in use are an average: the slot-seconds held in an interval (an operation
holds its slot from `created_at`, when admission claimed it, to `finished_at`,
or now) over the interval's length (up to now for the current one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Floor, Greatest, Least
from django.db.models.lookups import LessThan
from django.utils import timezone

from operations.exceptions import InvalidRequest
from operations.models import Operation, RefusalCount, Status

Edges = list[tuple[datetime, datetime]]  # each interval's (start, end), oldest first
# Durations are drawn for the kinds that completed most often, at most this many.
SHOWN_KINDS = 6
PERCENTILES = (50, 95)


@dataclass(frozen=True)
class ChartRange:
    """What a chart spans: `intervals` intervals of `width`, the last one holding now."""

    name: str
    title: str
    intervals: int
    width: timedelta
    width_words: str  # "5 minutes": what one interval is, in a sentence


RANGES = {
    "hour": ChartRange("hour", "Last hour", 12, timedelta(minutes=5), "5 minutes"),
    "day": ChartRange("day", "Last day", 24, timedelta(hours=1), "hour"),
}
DEFAULT_RANGE = "hour"


def chart_range(name: str | None) -> ChartRange:
    """The range called `name` (the default when empty); InvalidRequest for any other."""
    if not name:
        return RANGES[DEFAULT_RANGE]
    try:
        return RANGES[name]
    except KeyError:
        shown = name if len(name) <= 20 else f"{name[:20]}…"
        raise InvalidRequest(
            f"range={shown!r} is not a chart range; use {' or '.join(RANGES)}."
        ) from None


@dataclass(frozen=True)
class Interval:
    """One interval of a chart and what happened in it."""

    start: datetime
    end: datetime  # exclusive
    slots: float = 0.0  # average slots in use
    completed: int = 0
    failed: int = 0
    refused: int = 0

    @property
    def outcomes(self) -> int:
        return self.completed + self.failed + self.refused


@dataclass(frozen=True)
class KindDurations:
    """Percentiles of how long one kind's completed operations ran (finished less started)."""

    kind: str
    completed: int
    p50: float  # seconds
    p95: float


@dataclass(frozen=True)
class Series:
    """Every figure the charts of one range draw."""

    range: ChartRange
    now: datetime
    slot_limit: int
    intervals: list[Interval]
    refused_by_reason: dict[str, int]
    durations: list[KindDurations]


def series(chart: ChartRange, now: datetime | None = None) -> Series:
    """Everything the charts of `chart` draw, as of `now`."""
    now = now or timezone.now()
    edges = interval_edges(chart, now)
    # Two reads, each through its own index: those that ended in the range, those still on.
    ended = held_seconds(ended_within(edges[0][0], edges[-1][1]), edges, now)
    active = held_seconds(Operation.objects.holding(), edges, now)
    held = [a + b for a, b in zip(ended, active, strict=True)]
    finished = outcome_counts(edges)
    refused, by_reason = refusal_counts(edges)
    intervals = [
        Interval(
            start,
            end,
            slots=average(seconds, over=(min(end, now) - start).total_seconds()),
            completed=finished[Status.COMPLETED][index],
            failed=finished[Status.FAILED][index],
            refused=refused[index],
        )
        for index, ((start, end), seconds) in enumerate(zip(edges, held, strict=True))
    ]
    return Series(
        range=chart,
        now=now,
        slot_limit=settings.COORDHUB.max_concurrent_operations,
        intervals=intervals,
        refused_by_reason=by_reason,
        durations=kind_durations(edges[0][0], edges[-1][1]),
    )


def average(held: float, over: float) -> float:
    """Slots in use on average: slot-seconds `held` over `over` seconds."""
    return round(held / over, 2) if over > 0 else 0.0


def interval_edges(chart: ChartRange, now: datetime) -> Edges:
    """The (start, end) of each interval, oldest first, the last one holding `now`."""
    width = chart.width.total_seconds()
    epoch = now.timestamp()
    current = datetime.fromtimestamp(epoch - epoch % width, tz=UTC)
    starts = [
        current - (chart.intervals - 1 - index) * chart.width for index in range(chart.intervals)
    ]
    return [(start, start + chart.width) for start in starts]


def ended_within(start: datetime, end: datetime) -> QuerySet[Operation]:
    """Operations that ended in [start, end): a range of finished_at's index.

    The range bounds what the database groups and sorts however long the history.
    """
    ended = Operation.objects.filter(finished_at__gte=start, finished_at__lt=end)
    return ended.exclude(Q(waited_seconds=None) & ~Q(wait_reason=""))  # left the line unserved


class Epoch(Func):
    """A datetime as seconds since 1970, in the database's own arithmetic (no Python per row)."""

    arity = 1
    output_field = FloatField()
    template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)"

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django stores UTC text; julianday() reads it, to the millisecond.
        template = "((julianday(%(expressions)s) - 2440587.5) * 86400.0)"
        return self.as_sql(compiler, connection, template=template, **extra)


def seconds_since(moment: Any, origin: datetime) -> Any:
    """Seconds from `origin` to `moment` (a field's name or an expression), in the database."""
    # Small numbers: sums of many of them keep their precision, as sums of epochs would not.
    return Epoch(moment) - Value(origin.timestamp())


def interval_of(moment: Any, edges: Edges) -> Case:
    """The index of the interval `moment` (a field's name or an expression) falls in.

    Compared as datetimes, exactly: a moment on an edge belongs to the later interval.
    Callers keep to the range; anything past the last edge would count in the last.
    """
    moment = F(moment) if isinstance(moment, str) else moment
    return Case(
        *(When(LessThan(moment, end), then=Value(index)) for index, (_, end) in enumerate(edges)),
        default=Value(len(edges) - 1),
        output_field=IntegerField(),
    )


def held_seconds(operations: QuerySet[Operation], edges: Edges, now: datetime) -> list[float]:
    """Slot-seconds `operations` held in each interval, from their slot to finished_at or now.

    Each operation is clipped to [first edge, now] and grouped by the intervals it began
    and ended in: one group's rows hold, together, from their sum of beginnings to the
    end of the first interval, every interval between, and from the last one's start to
    their sum of ends. (Which side of an edge a moment on it falls makes no difference
    here, so intervals are found by arithmetic, not by exact comparison.)
    """
    origin, width = edges[0][0], (edges[0][1] - edges[0][0]).total_seconds()
    # An operation that waited in line took its slot when its wait ended.
    took_slot = Epoch("created_at") + Coalesce("waited_seconds", Value(0.0))
    begins = Greatest(took_slot, Value(origin.timestamp())) - Value(origin.timestamp())
    ends = seconds_since(Least(Coalesce("finished_at", Value(now)), Value(now)), origin)
    groups = (
        operations.filter(created_at__lt=now)
        .annotate(first=Floor(begins / width), last=Floor(ends / width))
        .values_list("first", "last")
        .annotate(operations=Count("pk"), began=Sum(begins), ended=Sum(ends))
    )
    held = [0.0] * len(edges)
    for first, last, count, began, ended in groups:
        first, last = (min(int(index), len(edges) - 1) for index in (first, last))
        if first == last:
            held[first] += ended - began
            continue
        held[first] += count * (first + 1) * width - began
        for between in range(first + 1, last):
            held[between] += count * width
        held[last] += ended - count * last * width
    return held


def outcome_counts(edges: Edges) -> dict[str, list[int]]:
    """Completed and failed operations per interval, by the interval they finished in."""
    counts = {Status.COMPLETED: [0] * len(edges), Status.FAILED: [0] * len(edges)}
    rows = (
        ended_within(edges[0][0], edges[-1][1])
        .annotate(interval=interval_of("finished_at", edges))
        .values_list("status", "interval")
        .annotate(Count("pk"))
    )
    for status, interval, count in rows:
        if status in counts:  # cancelled ones are neither
            counts[status][interval] += count
    return counts


def refusal_counts(edges: Edges) -> tuple[list[int], dict[str, int]]:
    """Refused starts per interval, and in the whole range by reason."""
    rows = (
        RefusalCount.objects.filter(minute__gte=edges[0][0], minute__lt=edges[-1][1])
        .annotate(interval=interval_of("minute", edges))
        .values_list("reason", "interval")
        .annotate(Sum("count"))
        .order_by("reason")
    )
    per_interval = [0] * len(edges)
    by_reason: dict[str, int] = {}
    for reason, interval, count in rows:
        per_interval[interval] += count
        by_reason[reason] = by_reason.get(reason, 0) + count
    return per_interval, by_reason


def kind_durations(start: datetime, end: datetime) -> list[KindDurations]:
    """p50 and p95 of each kind's operations completed in [start, end), most completed first.

    Nearest-rank percentiles: the value at rank ⌈p·n/100⌉ of the n sorted durations,
    read by the database one row at a time (ORDER BY … OFFSET), never the whole list.
    """
    completed = Q(status=Status.COMPLETED, started_at__isnull=False)
    # Counted by kind among the range's ended operations, found through finished_at's
    # index: filtered on status, SQLite would walk every completed operation instead.
    kinds = (
        ended_within(start, end)
        .values_list("kind")
        .annotate(count=Count("pk", filter=completed))
        .filter(count__gt=0)
        .order_by("-count", "kind")
    )
    found = []
    for kind, count in kinds[:SHOWN_KINDS]:
        durations = (
            ended_within(start, end)
            .filter(completed, kind=kind)  # through (kind, status, finished_at)'s index
            .annotate(seconds=Epoch("finished_at") - Epoch("started_at"))
            .order_by("seconds")
            .values_list("seconds", flat=True)
        )
        p50, p95 = (nth_or_last(durations, rank(p, count)) for p in PERCENTILES)
        if p95 is not None:  # None: every one of them was deleted meanwhile
            found.append(KindDurations(kind, count, round(p50, 3), round(p95, 3)))
    return found


def nth_or_last(sorted_values: QuerySet, index: int) -> float | None:
    """The value at `index`, or the last if fewer are left (rows deleted since they were
    counted, e.g. by pruning); None if none is left."""
    value = next(iter(sorted_values[index : index + 1]), None)
    if value is None:
        value = next(iter(sorted_values.reverse()[:1]), None)
    return value


def rank(percentile: int, count: int) -> int:
    """The 0-based index of the nearest-rank `percentile` among `count` sorted values."""
    return max(math.ceil(percentile * count / 100) - 1, 0)
