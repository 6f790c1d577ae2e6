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

from operations import counters
from operations.exceptions import NoFreeSlot
from operations.kinds import get_kind
from operations.models import Operation
from operations.slots import Hold, claim_slot
from operations.tasks import run_operation


def admit(
    kind_name: object, params: object, *, client_key: str = "", user: Any = None
) -> Operation:
    """Start an operation of `kind_name`, or raise why it cannot start."""
    config = settings.COORDHUB
    kind = get_kind(kind_name)
    cleaned = kind.validate(params)
    try:
        with transaction.atomic():
            operation = Operation.objects.create(
                kind=kind.name,
                params=cleaned,
                client_key=client_key,
                user=user if user is not None and user.is_authenticated else None,
            )
            hold = claim_slot(
                operation,
                limit=config.max_concurrent_operations,
                lease_seconds=config.slot_lease_seconds,
            )
            if queue_shares_the_database():
                # The task row commits with the operation or not at all: a start that fails
                # midway (the database going away) leaves nothing behind.
                enqueue(operation, hold)
            else:
                transaction.on_commit(partial(enqueue, operation, hold))
    except NoFreeSlot:
        counters.add(counters.REJECTIONS)
        raise
    return operation


def queue_shares_the_database() -> bool:
    """Whether the task backend stores its queue in the default database (django-tasks-db)."""
    return isinstance(run_operation.get_backend(), DatabaseBackend)


def enqueue(operation: Operation, hold: Hold) -> None:
    """Hand the operation to the task backend.

    With another backend this runs after commit, so that a worker never sees a
    task before its operation; an enqueue lost there ends when the lease runs out.
    """
    result = run_operation.enqueue(str(operation.id), hold.lease_version)
    operation.task_id = uuid.UUID(str(result.id))
    Operation.objects.filter(pk=operation.id).update(task_id=operation.task_id)
