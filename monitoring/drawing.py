"""The charts as drawn: rectangles in each SVG's viewBox, scales, and the figures in words.

Every chart is drawn in its own viewBox and stretched to the panel's width
(`preserveAspectRatio="none"`), so no text lives inside the SVG, where it would
stretch too: labels and scales are HTML around it, and each chart's figures are
also said in a sentence (the SVG's description) and a table. Templates cannot do
arithmetic, so every rectangle is computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from monitoring.charts import (
    RANGES,
    ChartRange,
    Interval,
    KindDurations,
    Series,
    chart_range,
    series,
)

# The time charts: one column of COLUMN_WIDTH units per interval, VIEW_HEIGHT units tall.
COLUMN_WIDTH = 10
BAR_WIDTH = 8
VIEW_HEIGHT = 100
# The duration chart: one row of ROW_HEIGHT units per kind, VIEW_WIDTH units wide, drawn
# ROW_PIXELS high (the kinds' names beside it take as much: see .chart-kinds in the CSS).
ROW_HEIGHT = 10
ROW_PIXELS = 28
VIEW_WIDTH = 100
# A value above zero never draws thinner than this, so that one failure among hundreds shows.
MIN_VISIBLE = 1.5


@dataclass(frozen=True)
class Rect:
    """One rectangle of a chart; `series` names its CSS class (`series-<name>`)."""

    series: str
    x: float
    y: float
    width: float
    height: float


def column_x(index: int) -> float:
    """Where the bar of the `index`-th interval starts."""
    return index * COLUMN_WIDTH + (COLUMN_WIDTH - BAR_WIDTH) / 2


def length(value: float, top: float, full: float) -> float:
    """How long `value` draws on a scale where `top` takes `full` units."""
    if value <= 0 or top <= 0:
        return 0.0
    return round(max(value / top * full, MIN_VISIBLE), 3)


def stacked_column(index: int, parts: list[tuple[str, float]], top: float) -> list[Rect]:
    """The `index`-th column's bars, each part on the one before, from the bottom up."""
    rects, bottom = [], float(VIEW_HEIGHT)
    for name, value in parts:
        height = length(value, top, VIEW_HEIGHT)
        if height:
            bottom = round(bottom - height, 3)
            rects.append(Rect(name, column_x(index), bottom, BAR_WIDTH, height))
    return rects


def level(value: float, top: float) -> float:
    """The y of a horizontal line at `value` (a limit, a grid line)."""
    return round(VIEW_HEIGHT - min(value / top, 1) * VIEW_HEIGHT, 3) if top > 0 else VIEW_HEIGHT


def row_bar(row: int, series: str, value: float, top: float, inset: float) -> Rect | None:
    """A horizontal bar in the `row`-th row, `inset` units in from its top and bottom."""
    width = length(value, top, VIEW_WIDTH)
    if not width:
        return None
    return Rect(series, 0, row * ROW_HEIGHT + inset, width, ROW_HEIGHT - 2 * inset)


def seconds_words(seconds: float) -> str:
    """A duration as people read it: "850 ms", "2.4 s", "3.5 min", "1.2 h"."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 100:
        return f"{seconds:.1f} s"
    if seconds < 6000:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def number_words(value: float) -> str:
    """A figure without a needless ".0": 3, 2.5, 0.25."""
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


# --- The panel ------------------------------------------------------------------------

REASONS = {"concurrency_limit": "with all slots busy", "rate_limited": "past a rate limit"}


@dataclass(frozen=True)
class Column:
    """One interval as both time charts draw it."""

    interval: Interval
    current: bool
    slots: list[Rect]
    outcomes: list[Rect]


@dataclass(frozen=True)
class DurationRow:
    durations: KindDurations
    bars: list[Rect]

    @property
    def p50_words(self) -> str:
        return seconds_words(self.durations.p50)

    @property
    def p95_words(self) -> str:
        return seconds_words(self.durations.p95)


@dataclass(frozen=True)
class Charts:
    """What charts.html draws for one range."""

    series: Series
    columns: list[Column]
    slots_top: float
    outcomes_top: int
    durations_top: float
    rows: list[DurationRow]

    @property
    def range(self) -> ChartRange:
        return self.series.range

    @property
    def ranges(self) -> list[ChartRange]:
        return list(RANGES.values())

    @property
    def view_width(self) -> int:
        return len(self.columns) * COLUMN_WIDTH

    @property
    def limit_y(self) -> float:
        return level(self.series.slot_limit, self.slots_top)

    @property
    def durations_height(self) -> int:
        return len(self.rows) * ROW_HEIGHT

    @property
    def durations_pixels(self) -> int:
        return len(self.rows) * ROW_PIXELS

    @property
    def ticks(self) -> list[datetime]:
        """The times under a time chart: its left edge, its middle and its right edge."""
        intervals = self.series.intervals
        return [intervals[0].start, intervals[len(intervals) // 2].start, intervals[-1].end]

    @property
    def slots_top_words(self) -> str:
        return number_words(self.slots_top)

    @property
    def durations_top_words(self) -> str:
        return seconds_words(self.durations_top)

    @property
    def slots_sentence(self) -> str:
        intervals = self.series.intervals
        average = sum(interval.slots for interval in intervals) / len(intervals)
        busiest = max(intervals, key=lambda interval: interval.slots)
        return (
            f"Slots in use over the last {self.range.name}, averaged per {self.range.width_words}: "
            f"{number_words(round(average, 2))} on average, at most "
            f"{number_words(busiest.slots)} (the {self.range.width_words} from "
            f"{timezone.localtime(busiest.start):%H:%M}), of {self.series.slot_limit} slots."
        )

    @property
    def outcomes_sentence(self) -> str:
        intervals = self.series.intervals
        completed = sum(interval.completed for interval in intervals)
        failed = sum(interval.failed for interval in intervals)
        refused = sum(interval.refused for interval in intervals)
        reasons = ", ".join(
            f"{count} {REASONS.get(reason, reason)}"
            for reason, count in self.series.refused_by_reason.items()
            if count
        )
        return (
            f"Over the last {self.range.name}: {completed} completed, {failed} failed and "
            f"{refused} refused{f' ({reasons})' if reasons else ''}; at most "
            f"{max(interval.outcomes for interval in intervals)} in any {self.range.width_words}."
        )

    @property
    def durations_sentence(self) -> str:
        if not self.rows:
            return f"No operation completed in the last {self.range.name}."
        kinds = "; ".join(
            f"{row.durations.kind}: p50 {row.p50_words}, p95 {row.p95_words} "
            f"({row.durations.completed} operations)"
            for row in self.rows
        )
        return f"Run times of the operations completed in the last {self.range.name}. {kinds}."


def drawn(found: Series) -> Charts:
    """Lay out the charts of `found`."""
    intervals = found.intervals
    slots_top = max(found.slot_limit, *(interval.slots for interval in intervals))
    outcomes_top = max(1, *(interval.outcomes for interval in intervals))
    durations_top = max((kind.p95 for kind in found.durations), default=0.0)
    columns = [
        Column(
            interval,
            current=index == len(intervals) - 1,
            slots=stacked_column(index, [("slots", interval.slots)], slots_top),
            outcomes=stacked_column(
                index,
                [
                    ("completed", interval.completed),
                    ("failed", interval.failed),
                    ("refused", interval.refused),
                ],
                outcomes_top,
            ),
        )
        for index, interval in enumerate(intervals)
    ]
    rows = [duration_row(row, kind, durations_top) for row, kind in enumerate(found.durations)]
    return Charts(found, columns, slots_top, outcomes_top, durations_top, rows)


def duration_row(row: int, kind: KindDurations, top: float) -> DurationRow:
    """A kind's row: its p95 bar, with its p50 bar inside it."""
    bars = (
        row_bar(row, "p95", kind.p95, top, inset=1.5),
        row_bar(row, "p50", kind.p50, top, inset=3),
    )
    return DurationRow(kind, [bar for bar in bars if bar])


def chart_context(range_name: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The context of monitoring/charts.html for the range called `range_name`.

    Raises InvalidRequest for a range that does not exist.
    """
    return {"charts": drawn(series(chart_range(range_name), now))}
