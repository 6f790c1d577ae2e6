from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.state import SHOWN_OPERATIONS, current_versions, live_state
from operations.admission import admit
from operations.models import Operation, Status

pytestmark = pytest.mark.django_db


def test_running_operations_come_first_and_at_most_twenty_are_shown(configure):
    configure(max_concurrent_operations=3)
    finished = [
        Operation.objects.create(kind="simulated", status=Status.COMPLETED)
        for _ in range(SHOWN_OPERATIONS)
    ]
    running = admit("simulated", {})
    Operation.objects.filter(pk=running.pk).update(status=Status.RUNNING, progress=30)

    state = live_state(None)

    assert state.operations[0].pk == running.pk
    assert len(state.operations) == SHOWN_OPERATIONS
    assert finished[0] not in state.operations
    assert state.content_version == current_versions(None).content


def test_progress_changes_the_content_version_and_a_status_change_both(configure):
    configure(max_concurrent_operations=3)
    operation = admit("simulated", {})
    before = current_versions(None)

    Operation.objects.filter(pk=operation.pk).update(progress=40)
    progressed = current_versions(None)
    Operation.objects.filter(pk=operation.pk).update(status=Status.RUNNING)
    running = current_versions(None)

    assert current_versions(None) == running  # nothing changed, nothing new
    assert progressed.state == before.state
    assert progressed.content != before.content
    assert running.state != progressed.state
    assert running.content != progressed.content


def test_history_follows_the_active_ones_newest_first_whatever_their_age(configure):
    configure(max_concurrent_operations=3)
    queued = admit("simulated", {})
    Operation.objects.filter(pk=queued.pk).update(created_at=timezone.now() - timedelta(days=1))
    finished = [
        Operation.objects.create(
            kind="simulated",
            status=(Status.COMPLETED, Status.FAILED, Status.CANCELLED)[n % 3],
            created_at=timezone.now() - timedelta(minutes=n),
        )
        for n in range(SHOWN_OPERATIONS + 5)
    ]

    shown = [operation.pk for operation in live_state(None).operations]

    assert shown == [queued.pk] + [operation.pk for operation in finished[: SHOWN_OPERATIONS - 1]]
