"""The background task that runs admitted operations (django.tasks, django-tasks-db worker)."""

from __future__ import annotations

from django.tasks import task

from operations import execution


@task()
def run_operation(operation_id: str, lease_version: int) -> str:
    """Run one operation under the slot lease it was admitted with."""
    return execution.execute(operation_id, lease_version)
