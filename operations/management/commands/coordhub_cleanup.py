"""Sweep expired slot leases and prune old rows now, as the worker does periodically."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from operations.maintenance import sweep


class Command(BaseCommand):
    help = "Reclaim expired slot leases and prune finished operations past retention."

    def handle(self, *args: Any, **options: Any) -> None:
        result = sweep()
        self.stdout.write(
            f"Reclaimed {result.reclaimed} expired slot(s); pruned "
            f"{result.pruned_operations} operation(s), {result.pruned_task_rows} task row(s) "
            f"and {result.pruned_refusal_counts} row(s) of refusal counts."
        )
