"""Requests per second of endpoints against a baseline, each run bracketed by baseline runs.

On a shared machine the load from neighbours drifts within seconds, so every
target run sits between two runs of its baseline on the same server
(base, t1, base, t2, base, ...) and its ratio is taken against the mean of
those two. A figure is the median over the rounds; so is a ratio.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field

from bench.load import LoadGenerator, Sample
from bench.table import Row, Target

REQUIRED_SHARE = 0.99  # of responses with the expected status


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str  # how the table names it as a baseline
    url: str
    expect: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """Targets compared with one baseline."""

    baseline: Endpoint
    targets: list[Endpoint]


@dataclass
class Results:
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)  # target key: per round

    def add(self, endpoint: Endpoint, sample: Sample) -> None:
        self.endpoints[endpoint.key] = endpoint
        self.samples.setdefault(endpoint.key, []).append(sample)

    def problem(self, key: str) -> str:
        """Why `key`'s samples cannot be trusted, or "" when they can."""
        endpoint = self.endpoints[key]
        for sample in self.samples[key]:
            if sample.share(endpoint.expect) < REQUIRED_SHARE:
                return (
                    f"{endpoint.url} answered {describe(sample.statuses)}, "
                    f"not {endpoint.expect} as expected"
                )
        return ""

    def rate(self, key: str) -> float:
        return statistics.median(sample.requests_per_second for sample in self.samples[key])

    def row(self, measurement: str, key: str, baseline: str, target: Target | None) -> Row:
        problem = self.problem(key) or self.problem(baseline)
        if problem:
            return Row(measurement, "", error=problem)
        return Row(
            measurement,
            f"{self.rate(key):.0f} req/s",
            f"{self.endpoints[baseline].label} {self.rate(baseline):.0f} req/s",
            statistics.median(self.ratios[key]),
            target,
        )


def describe(statuses: dict[int, int]) -> str:
    total = sum(statuses.values()) or 1
    return ", ".join(
        f"{status} x{count} ({count / total:.0%})" for status, count in sorted(statuses.items())
    )


def measure(
    load: LoadGenerator,
    comparisons: list[Comparison],
    rounds: int,
    seconds: float,
    warmup: float,
) -> Results:
    """Warm every endpoint up, then run each comparison's bracketed sequence `rounds` times."""
    for comparison in comparisons:
        for endpoint in [comparison.baseline, *comparison.targets]:
            load.run(endpoint.url, warmup, endpoint.headers)
    results = Results()

    def drive(endpoint: Endpoint, number: int) -> float:
        sample = load.run(endpoint.url, seconds, endpoint.headers)
        results.add(endpoint, sample)
        print(
            f"    round {number + 1}/{rounds}: {endpoint.key}: "
            f"{sample.requests_per_second:.0f} req/s ({describe(sample.statuses)})",
            file=sys.stderr,
            flush=True,
        )
        return sample.requests_per_second

    for number in range(rounds):
        for comparison in comparisons:
            before = drive(comparison.baseline, number)
            for target in comparison.targets:
                rate = drive(target, number)
                after = drive(comparison.baseline, number)
                results.ratios.setdefault(target.key, []).append(rate / ((before + after) / 2))
                before = after
    return results
