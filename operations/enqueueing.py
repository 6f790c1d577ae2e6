"""Hand an operation that holds a slot to the task backend, with its lease version.

The task is looked up in the app registry (`OperationsConfig.ready` registers
it), not imported: running a task ends its operation, which frees the slot, which
the line hands over by enqueueing the task again (`operations.line`). The task
module sits above this one, as the worker sits above the engine.
"""

from __future__ import annotations

import uuid
from functools import partial

from django.apps import apps
from django.db import transaction
from django.tasks import Task
from django_tasks_db.backend import DatabaseBackend

from operations.models import Operation
from operations.slots import Hold


def hand_to_worker(operation: Operation, hold: Hold) -> None:
    """Enqueue `operation`'s task within the current transaction, or once it commits.

    With django-tasks-db the task row commits with the operation or not at all, so
    a start that fails midway leaves nothing behind; `operation.task_id` is set
    before the caller saves. Another backend is enqueued after the commit, so that
    a worker never sees a task before its operation.
    """
    if queue_shares_the_database():
        operation.task_id = enqueue(operation, hold)
    else:
        transaction.on_commit(partial(enqueue_after_commit, operation, hold))


def run_operation() -> Task:
    """The task that runs an operation (`operations.tasks.run_operation`)."""
    return apps.get_app_config("operations").run_operation


def queue_shares_the_database() -> bool:
    """Whether the task backend stores its queue in the default database (django-tasks-db)."""
    return isinstance(run_operation().get_backend(), DatabaseBackend)


def enqueue(operation: Operation, hold: Hold) -> uuid.UUID:
    """Hand the operation to the task backend; return the task's id."""
    result = run_operation().enqueue(str(operation.id), hold.lease_version)
    return uuid.UUID(str(result.id))


def enqueue_after_commit(operation: Operation, hold: Hold) -> None:
    """Enqueue once the operation is committed; an enqueue lost here ends with its lease."""
    operation.task_id = enqueue(operation, hold)
    Operation.objects.filter(pk=operation.id).update(task_id=operation.task_id)
