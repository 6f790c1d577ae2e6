from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from operations import refusals
from operations.admission import admit
from operations.maintenance import beat, retire, sweep
from operations.models import Operation, RefusalCount, Slot, Status, WorkerHeartbeat

pytestmark = pytest.mark.django_db


def finished_days_ago(days: float, status: Status = Status.COMPLETED) -> Operation:
    moment = timezone.now() - timedelta(days=days)
    return Operation.objects.create(
        kind="simulated", status=status, created_at=moment, finished_at=moment
    )


def test_sweep_prunes_finished_operations_past_retention_only(configure):
    configure(operation_retention_days=30)
    old = [finished_days_ago(31), finished_days_ago(40, Status.FAILED)]
    recent = finished_days_ago(29)
    active = Operation.objects.create(
        kind="simulated", status=Status.RUNNING, created_at=timezone.now() - timedelta(days=90)
    )

    result = sweep()

    assert result.pruned_operations == 2
    assert set(Operation.objects.values_list("pk", flat=True)) == {recent.pk, active.pk}
    assert not Operation.objects.filter(pk__in=[o.pk for o in old]).exists()


def test_sweep_deletes_task_rows_of_settled_operations(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        settled = admit("simulated", {})
        running = admit("simulated", {})
    # The worker of `settled` died: its task row stays RUNNING, its operation failed long ago.
    DBTaskResult.objects.filter(pk=settled.task_id).update(status="RUNNING")
    Operation.objects.filter(pk=settled.pk).update(
        status=Status.FAILED, finished_at=timezone.now() - timedelta(hours=2)
    )

    result = sweep()

    assert result.pruned_task_rows == 1
    assert list(DBTaskResult.objects.values_list("pk", flat=True)) == [running.task_id]


def test_sweep_reclaims_expired_leases():
    operation = admit("simulated", {})
    Operation.objects.filter(pk=operation.pk).update(status=Status.RUNNING)
    Slot.objects.filter(operation=operation).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert sweep().reclaimed == 1

    operation.refresh_from_db()
    assert operation.status == Status.FAILED
    assert "Worker lost" in operation.error
    assert not Slot.objects.held().exists()


def test_sweep_keeps_the_slot_table_at_the_configured_size(configure):
    configure(max_concurrent_operations=4)

    sweep()

    assert list(Slot.objects.values_list("number", flat=True)) == [1, 2, 3, 4]


def test_cleanup_command_reports_what_it_did(capsys):
    finished_days_ago(45)

    call_command("coordhub_cleanup")

    assert capsys.readouterr().out.strip() == (
        "Reclaimed 0 expired slot(s); pruned 1 operation(s), 0 task row(s) "
        "and 0 row(s) of refusal counts."
    )


def test_sweep_prunes_refusal_counts_older_than_two_days():
    now = timezone.now()
    for age in (timedelta(days=2, minutes=1), timedelta(days=1, hours=23)):
        refusals.record("concurrency_limit", at=now - age)

    assert sweep().pruned_refusal_counts == 1
    assert RefusalCount.objects.count() == 1


def test_heartbeats_record_liveness_and_retire_on_exit():
    beat("w1", threads=3)
    beat("w1", threads=3)

    alive = WorkerHeartbeat.alive(within=timedelta(seconds=5))
    assert list(alive.values_list("worker_id", "threads")) == [("w1", 3)]
    retire("w1")
    assert not WorkerHeartbeat.objects.exists()
