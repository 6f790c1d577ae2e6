"""Periodic upkeep: reclaim expired leases, prune old rows, record worker liveness."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from operations import line, refusals, slots
from operations.models import ClientTurn, Operation, WorkerHeartbeat

# Task rows of finished operations are kept this long for inspection, then deleted.
TASK_ROW_GRACE = timedelta(hours=1)
STALE_HEARTBEAT = timedelta(days=1)
STALE_TURN = timedelta(days=1)


@dataclass(frozen=True)
class Sweep:
    reclaimed: int
    pruned_operations: int
    pruned_task_rows: int
    pruned_refusal_counts: int


def sweep() -> Sweep:
    """Reclaim expired slots and prune what is past retention."""
    config = settings.COORDHUB
    slots.ensure_slots(config.max_concurrent_operations)
    reclaimed = line.reclaim_expired()
    line.fill()  # a slot freed some other way (a raised limit) goes to the line too
    cutoff = timezone.now() - timedelta(days=config.operation_retention_days)
    pruned_operations, _ = Operation.objects.finished_before(cutoff).delete()
    pruned_task_rows = prune_task_rows(cutoff)
    WorkerHeartbeat.objects.filter(last_seen_at__lt=timezone.now() - STALE_HEARTBEAT).delete()
    # A client's turn a day old is as good as none: it is served among the first either way.
    ClientTurn.objects.filter(served_at__lt=timezone.now() - STALE_TURN).delete()
    return Sweep(reclaimed, pruned_operations, pruned_task_rows, refusals.prune())


def prune_task_rows(cutoff) -> int:
    """Delete django-tasks-db rows the operations no longer need.

    The operation row decides status; a task row left RUNNING by a dead worker
    would otherwise stay forever.
    """
    settled = Operation.objects.finished_before(timezone.now() - TASK_ROW_GRACE)
    deleted, _ = DBTaskResult.objects.filter(
        Q(id__in=settled.exclude(task_id=None).values("task_id"))
        | Q(finished_at__lt=cutoff)
        | Q(enqueued_at__lt=cutoff)
    ).delete()
    return deleted


def beat(worker_id: str, threads: int) -> None:
    """Record that this worker is alive."""
    import os

    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "threads": threads,
            "last_seen_at": timezone.now(),
        },
    )


def retire(worker_id: str) -> None:
    WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()
