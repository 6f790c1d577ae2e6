"""Admission: validate, claim a slot, create the operation and enqueue it, in one transaction.

Every entry point (API, dashboard, admin "retry") starts operations here. A
refusal raises an `AdmissionError` and leaves nothing behind: no row, no slot.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django_tasks_db.backend import DatabaseBackend

from operations import counters, refusals
from operations.exceptions import NoFreeSlot
from operations.kinds import Kind, get_kind
from operations.models import Operation
from operations.slots import Hold, claim_slot
from operations.tasks import run_operation


def admit(
    kind_name: object,
    params: object,
    *,
    client_key: str = "",
    user: Any = None,
    retry_of: Operation | None = None,
) -> Operation:
    """Start an operation of `kind_name`, or raise why it cannot start."""
    kind = get_kind(kind_name)
    cleaned = kind.validate(params)
    return admit_valid(kind, cleaned, client_key=client_key, user=user, retry_of=retry_of)


def admit_valid(
    kind: Kind,
    params: dict[str, Any],
    *,
    client_key: str = "",
    user: Any = None,
    retry_of: Operation | None = None,
) -> Operation:
    """Claim a slot for `kind` with validated `params`, create the operation, enqueue it.

    Raises NoFreeSlot when every slot is taken. `retry_of`: the operation this one
    retries, recorded on the new one.

    One short write transaction: claim the slot, enqueue the task, insert the
    operation (already carrying its task's id), count the allocation.
    """
    config = settings.COORDHUB
    operation = Operation(
        kind=kind.name,
        params=params,
        client_key=client_key,
        user=user if user is not None and user.is_authenticated else None,
        retry_of=retry_of,
    )
    try:
        with transaction.atomic(), counters.counted():
            hold = claim_slot(
                operation,
                limit=config.max_concurrent_operations,
                lease_seconds=config.slot_lease_seconds,
            )
            if queue_shares_the_database():
                # The task row commits with the operation or not at all: a start that fails
                # midway (the database going away) leaves nothing behind.
                operation.task_id = enqueue(operation, hold)
                operation.save(force_insert=True)
            else:
                operation.save(force_insert=True)
                transaction.on_commit(partial(enqueue_after_commit, operation, hold))
            counters.add(counters.ALLOCATIONS)
    except NoFreeSlot as refusal:
        counters.add(counters.REJECTIONS)
        refusals.record(refusal.code)
        raise
    return operation


def queue_shares_the_database() -> bool:
    """Whether the task backend stores its queue in the default database (django-tasks-db)."""
    return isinstance(run_operation.get_backend(), DatabaseBackend)


def enqueue(operation: Operation, hold: Hold) -> uuid.UUID:
    """Hand the operation to the task backend; return the task's id."""
    result = run_operation.enqueue(str(operation.id), hold.lease_version)
    return uuid.UUID(str(result.id))


def enqueue_after_commit(operation: Operation, hold: Hold) -> None:
    """Enqueue once the operation is committed, for a backend outside the database.

    A worker then never sees a task before its operation; an enqueue lost here ends
    when the lease runs out.
    """
    operation.task_id = enqueue(operation, hold)
    Operation.objects.filter(pk=operation.id).update(task_id=operation.task_id)
