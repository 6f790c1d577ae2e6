"""Prometheus figures read from the database at scrape time, so every process reports the same."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from monitoring import reports
from operations import counters


class CoordhubCollector:
    """Collect slot, operation and lifetime figures at scrape time."""

    def collect(self) -> Iterator[Metric]:
        held, total = reports.slot_usage()
        yield GaugeMetricFamily("coordhub_slots", "Configured slots.", value=total)
        yield GaugeMetricFamily("coordhub_slots_in_use", "Slots held under a live lease.", held)
        by_status = GaugeMetricFamily(
            "coordhub_operations", "Operations kept, by status.", labels=["status"]
        )
        for status, count in reports.status_counts().items():
            by_status.add_metric([status], count)
        yield by_status
        lifetime = CounterMetricFamily(
            "coordhub_events", "Lifetime slot and operation events.", labels=["event"]
        )
        for name, value in counters.snapshot().items():
            lifetime.add_metric([name], value)
        yield lifetime
