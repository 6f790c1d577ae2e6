from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from operations.estimates import (
    DEFAULT_EXPECTED_SECONDS,
    HISTORY_SIZE,
    Estimate,
    expected_free_in,
    kind_duration,
)
from operations.models import Operation, Slot, Status
from operations.slots import claim_slot, ensure_slots

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def slots():
    ensure_slots(5)


# The moment every test asks at: rows are dated from it, so elapsed times are exact.
NOW = timezone.now()


def finished(kind: str, seconds: float, *, status: Status = Status.COMPLETED, ago: float = 60):
    """A row for an operation of `kind` that ran `seconds` and ended `ago` seconds back."""
    end = NOW - timedelta(seconds=ago)
    return Operation.objects.create(
        kind=kind, status=status, started_at=end - timedelta(seconds=seconds), finished_at=end
    )


def holding(kind: str, *, running_for: float | None = None, lease_seconds: int = 30):
    """An operation of `kind` holding a slot: running for so long, or queued (not started)."""
    if running_for is None:
        operation = Operation.objects.create(kind=kind, status=Status.QUEUED)
    else:
        started_at = NOW - timedelta(seconds=running_for)
        operation = Operation.objects.create(
            kind=kind, status=Status.RUNNING, started_at=started_at
        )
    claim_slot(operation, limit=5, lease_seconds=lease_seconds)
    return operation


def test_a_holder_is_expected_to_run_its_kinds_median_duration_of_recent_completions():
    for seconds in (1, 2, 9):
        finished("simulated", seconds)
    holding("simulated", running_for=0)

    assert expected_free_in(NOW) == Estimate(
        2,
        "the one operation holding a slot to reach its kind's median duration "
        "(simulated: median of the last 3 completed, 2.0 s)",
    )


def test_only_the_last_completed_operations_of_the_kind_count():
    finished("simulated", 500, ago=3600)  # older than the last HISTORY_SIZE
    for _ in range(HISTORY_SIZE):
        finished("simulated", 4)
    finished("simulated", 300, status=Status.FAILED)
    finished("simulated", 300, status=Status.CANCELLED)
    finished("other", 300)
    holding("simulated", running_for=0)

    estimate = expected_free_in(NOW)

    assert estimate.seconds == 4
    assert f"median of the last {HISTORY_SIZE} completed, 4.0 s" in estimate.basis


def test_without_a_completed_operation_of_the_kind_the_default_is_expected():
    finished("other", 2)
    holding("simulated", running_for=0)

    estimate = expected_free_in(NOW)

    assert estimate.seconds == DEFAULT_EXPECTED_SECONDS == 30
    assert estimate.basis == (
        "the one operation holding a slot to reach the default duration of 30 s "
        "(no completed simulated operation yet)"
    )


def test_the_time_already_run_is_subtracted():
    finished("simulated", 20)
    holding("simulated", running_for=15)
    holding("other", running_for=12)  # the default, 30 s: 18 s left

    assert expected_free_in(NOW).seconds == 5


def test_an_operation_past_its_median_is_expected_to_free_in_1_s():
    finished("simulated", 2)
    holding("simulated", running_for=40)

    assert expected_free_in(NOW) == Estimate(
        1,
        "the one operation holding a slot has run past its kind's median duration, "
        "so is expected to end soon (simulated: median of the last 1 completed, 2.0 s)",
    )


def test_of_several_holders_the_soonest_to_finish_answers():
    finished("slow", 100)
    finished("quick", 10)
    holding("slow", running_for=95)  # 5 s left
    holding("quick", running_for=1)  # 9 s left
    holding("unknown", running_for=0)  # 30 s left

    assert expected_free_in(NOW) == Estimate(
        5,
        "the soonest of 3 operations holding a slot to reach its kind's median duration "
        "(slow: median of the last 1 completed, 100.0 s)",
    )


def test_a_queued_holder_has_its_whole_expected_duration_ahead():
    finished("simulated", 12)
    holding("simulated")  # queued: claimed a slot, not started

    assert expected_free_in(NOW).seconds == 12


def test_holders_whose_lease_ran_out_are_left_out():
    finished("simulated", 12)
    holding("simulated", running_for=0)
    Slot.objects.held().update(lease_expires_at=NOW - timedelta(seconds=1))

    assert expected_free_in(NOW) == Estimate(
        1, "no slot is held under a live lease, so one may free now"
    )


def test_the_estimate_takes_one_query_per_distinct_kind(django_assert_num_queries):
    for kind in ("a", "a", "b"):
        holding(kind, running_for=0)

    with django_assert_num_queries(3):  # the holders, then kinds a and b
        expected_free_in(NOW)


@pytest.mark.sqlite  # reads SQLite's query plan
def test_a_kinds_history_is_read_through_its_index():
    with CaptureQueriesContext(connection) as captured:
        kind_duration("simulated")
    [query] = captured.captured_queries

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {query['sql']}")
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())

    assert "USING INDEX operation_kind_recent_idx" in plan
    assert "TEMP B-TREE" not in plan  # no sort: the index hands rows over newest first
