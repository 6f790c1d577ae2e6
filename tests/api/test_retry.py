"""POST /api/operations/<id>/retry: the same kind and params again, as a new operation."""

from __future__ import annotations

import pytest

from operations.admission import admit
from operations.models import Operation, Slot, Status

pytestmark = pytest.mark.django_db

MINE = "ip:127.0.0.1"


@pytest.fixture(autouse=True)
def limits(configure):
    configure(
        max_concurrent_operations=2,
        enable_rate_limiting=True,
        requests_per_minute=3,
        allow_anonymous=True,
    )


def ended(client_key: str = MINE) -> Operation:
    operation = admit("simulated", {"duration": 3, "data": {"job": 7}}, client_key=client_key)
    Slot.objects.filter(operation=operation).vacate()
    Operation.objects.filter(pk=operation.pk).update(status=Status.FAILED, error="boom")
    return operation


def test_a_retry_is_a_new_operation_with_the_same_kind_and_params_that_names_its_original(client):
    original = ended()

    response = client.post(f"/api/operations/{original.id}/retry")

    assert response.status_code == 202
    body = response.json()
    assert body["retry_of"] == str(original.id)
    assert body["params"] == original.params
    assert body["status"] == "queued"
    assert response["Location"] == f"/api/operations/{body['id']}"
    assert response["RateLimit"].startswith('"start";r=2;')  # a start like any other
    listed = client.get("/api/operations").json()["operations"]
    assert [row["retry_of"] for row in listed] == [str(original.id), None]


def test_a_retry_refused_for_a_full_pool_creates_nothing_and_spends_nothing(client):
    original = ended()
    for _ in range(2):
        admit("simulated", {"duration": 9}, client_key="ip:10.0.0.9")

    response = client.post(f"/api/operations/{original.id}/retry")

    assert response.status_code == 429
    assert response.json()["error"] == "concurrency_limit"
    assert not Operation.objects.filter(retry_of=original).exists()
    assert response["RateLimit"].startswith('"start";r=3;')


def test_only_the_client_that_started_an_operation_may_retry_it(client):
    original = ended("ip:10.0.0.9")

    response = client.post(f"/api/operations/{original.id}/retry")

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert not Operation.objects.filter(retry_of=original).exists()


def test_retrying_no_operation_is_a_404(client):
    response = client.post("/api/operations/8d6a1c42-3a1e-4f6e-9d51-6b1f8c9d0e11/retry")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_an_operation_shows_its_last_messages_with_their_times(client):
    original = ended()
    history = [{"at": "2026-11-30T10:00:01+00:00", "message": "step 1 of 2"}]
    Operation.objects.filter(pk=original.pk).update(message_history=history)

    assert client.get(f"/api/operations/{original.id}").json()["messages"] == history
