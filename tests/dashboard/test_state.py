from __future__ import annotations

import pytest

from dashboard.state import SHOWN_OPERATIONS, current_versions, live_state
from operations.admission import admit
from operations.models import Operation, Status

pytestmark = pytest.mark.django_db


def test_the_cheap_versions_match_the_rendered_state(configure):
    configure(max_concurrent_operations=3)
    finished = [
        Operation.objects.create(kind="simulated", status=Status.COMPLETED)
        for _ in range(SHOWN_OPERATIONS)
    ]
    running = admit("simulated", {})
    Operation.objects.filter(pk=running.pk).update(status=Status.RUNNING, progress=30)

    state = live_state(None)
    versions = current_versions(None)

    assert (versions.state, versions.content) == (state.state_version, state.content_version)
    assert state.operations[0].pk == running.pk
    assert len(state.operations) == SHOWN_OPERATIONS
    assert finished[0] not in state.operations
