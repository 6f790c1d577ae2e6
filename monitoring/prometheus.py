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
        figures = reports.line_figures()
        waiting = GaugeMetricFamily(
            "coordhub_waiting_operations",
            "Operations waiting in line for a slot, by what they wait for.",
            labels=["reason"],
        )
        for reason, count in figures["waiting_by_reason"].items():
            waiting.add_metric([reason or "unknown"], count)
        yield waiting
        waits = GaugeMetricFamily(
            "coordhub_wait_seconds",
            f"Waits for a slot of the last {reports.WAIT_SAMPLE} operations that waited.",
            labels=["quantile"],
        )
        for quantile, key in (("0.5", "p50"), ("0.95", "p95"), ("1", "max")):
            if figures["wait_seconds"][key] is not None:
                waits.add_metric([quantile], figures["wait_seconds"][key])
        yield waits
        lifetime = CounterMetricFamily(
            "coordhub_events", "Lifetime slot and operation events.", labels=["event"]
        )
        for name, value in counters.snapshot().items():
            lifetime.add_metric([name], value)
        yield lifetime
