from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from operations import counters
from operations.admission import admit
from operations.exceptions import InvalidParams, NoFreeSlot, UnknownKind
from operations.models import Operation, Slot, Status

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def three_slots(configure):
    configure(max_concurrent_operations=3, slot_lease_seconds=30)


def test_admit_creates_a_queued_operation_holding_a_slot_and_enqueues_it_on_commit(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        operation = admit("simulated", {"duration": 1}, client_key="ip:127.0.0.1")

    operation.refresh_from_db()
    assert operation.status == Status.QUEUED
    assert operation.params == {"duration": 1.0, "fail": False}
    assert operation.client_key == "ip:127.0.0.1"
    slot = Slot.objects.get(operation=operation)
    assert slot.lease_expires_at > operation.created_at
    task = DBTaskResult.objects.get(pk=operation.task_id)
    assert task.task_path == "operations.tasks.run_operation"
    assert task.args_kwargs["args"] == [str(operation.id), slot.lease_version]


@pytest.mark.parametrize(
    ("kind", "params", "error"),
    [
        ("nope", {}, UnknownKind),
        (None, {}, UnknownKind),
        ("simulated", {"duration": "2"}, InvalidParams),
        ("simulated", {"duration": 0}, InvalidParams),
        ("simulated", {"duration": 99999}, InvalidParams),
        ("simulated", {"extra": 1}, InvalidParams),
        ("simulated", [1], InvalidParams),
        ("simulated", "text", InvalidParams),
    ],
)
def test_bad_input_creates_nothing_and_holds_no_slot(
    kind, params, error, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(error):
        admit(kind, params)

    assert Operation.objects.count() == 0
    assert Slot.objects.held().count() == 0
    assert DBTaskResult.objects.count() == 0


def test_when_every_slot_is_busy_the_start_is_refused_and_leaves_nothing(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        admitted = [admit("simulated", {}) for _ in range(3)]

    with pytest.raises(NoFreeSlot) as refused:
        admit("simulated", {})

    assert refused.value.code == "concurrency_limit"
    assert Operation.objects.count() == 3
    assert set(Slot.objects.held().values_list("operation_id", flat=True)) == {
        operation.id for operation in admitted
    }
    assert DBTaskResult.objects.count() == 3
    assert counters.snapshot()[counters.REJECTIONS] == 1
    assert counters.snapshot()[counters.ALLOCATIONS] == 3


def test_a_lower_limit_applies_to_the_next_start(configure):
    admit("simulated", {})
    admit("simulated", {})
    configure(max_concurrent_operations=2)

    with pytest.raises(NoFreeSlot):
        admit("simulated", {})

    configure(max_concurrent_operations=3)
    assert admit("simulated", {}).status == Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_a_start_is_one_short_write_transaction():
    admit("simulated", {})  # the first start creates the slot table's rows
    with CaptureQueriesContext(connection) as captured:
        admit("simulated", {"duration": 1})

    statements = [query["sql"].split()[0].upper() for query in captured.captured_queries]
    work = [verb for verb in statements if verb not in ("BEGIN", "COMMIT")]
    # Lock the first claimable slot, take it, the task row, the operation, the counter.
    assert work == ["SELECT", "UPDATE", "INSERT", "INSERT", "UPDATE"]
    assert statements.count("COMMIT") <= 1
