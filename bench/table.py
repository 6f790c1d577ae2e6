"""The result table: one row per figure, its baseline, their ratio and the target it is held to."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

MEETS = "meets"
MISSES = "misses"
INFO = "info"
ERROR = "ERROR"
COLUMNS = ("measurement", "figure", "baseline", "ratio", "target", "verdict")


@dataclass(frozen=True)
class Target:
    """A bound on a ratio, such as `>= 0.6`."""

    symbol: str
    bound: float

    def met_by(self, ratio: float) -> bool:
        compare: Callable[[float, float], bool] = {
            ">=": operator.ge,
            "<=": operator.le,
            "=": operator.eq,
        }[self.symbol]
        return compare(round(ratio, 6), self.bound)

    def __str__(self) -> str:
        return f"{self.symbol} {self.bound:.2f}"


def at_least(bound: float) -> Target:
    return Target(">=", bound)


def at_most(bound: float) -> Target:
    return Target("<=", bound)


def exactly(bound: float) -> Target:
    return Target("=", bound)


@dataclass(frozen=True)
class Row:
    measurement: str
    figure: str
    baseline: str = ""
    ratio: float | None = None
    target: Target | None = None
    error: str = ""

    @property
    def verdict(self) -> str:
        if self.error:
            return ERROR
        if self.target is None or self.ratio is None:
            return INFO
        return MEETS if self.target.met_by(self.ratio) else MISSES

    def cells(self) -> tuple[str, ...]:
        ratio = "" if self.ratio is None else f"{self.ratio:.{2 if self.ratio >= 0.1 else 3}f}"
        return (
            self.measurement,
            self.error or self.figure,
            self.baseline,
            ratio,
            str(self.target or "-"),
            self.verdict,
        )


def failed(measurement: str, error: BaseException) -> Row:
    """A row for a measurement that could not run."""
    first_line = (str(error).strip().splitlines() or [""])[0]
    return Row(measurement, "", error=f"{type(error).__name__}: {first_line}".rstrip(": "))


def render(rows: list[Row]) -> str:
    """The rows as an aligned plain-text table."""
    cells = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(len(line[column]) for line in cells) for column in range(len(COLUMNS))]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    ]
    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([lines[0], rule, *lines[1:]])
