"""Waiting for a slot through the API: `when_busy`, the place in line, refusals costing nothing."""

from __future__ import annotations

import json

import pytest

from operations import line, slots
from operations.models import Operation, Status

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def one_slot(limits_for):
    limits_for(requests_per_minute=5, max_concurrent_operations=1)


LEFT_OUT = object()


def start(client, when_busy: object = LEFT_OUT, **extra):
    body: dict[str, object] = {"kind": "simulated", "params": {"duration": 5}}
    if when_busy is not LEFT_OUT:
        body["when_busy"] = when_busy
    return client.post(
        "/api/operations", json.dumps(body), content_type="application/json", **extra
    )


def remaining(response) -> str:
    return response["RateLimit"].split(";")[1]


def test_a_start_that_may_wait_is_accepted_into_the_line_with_its_place(client):
    holder = start(client).json()

    response = start(client, "wait")
    body = response.json()

    assert response.status_code == 202
    assert body["status"] == "waiting"
    assert body["line"] == {
        "position": 1,
        "of": 1,
        "expected_start_in_seconds": 30,  # no simulated operation completed yet: the default
        "waiting_because": "concurrency_limit",
    }
    assert remaining(response) == "r=3"  # counted when accepted into the line
    (hold,) = slots.holds_of(holder["id"])
    line.release(hold)
    shown = client.get(f"/api/operations/{body['id']}").json()
    assert shown["status"] == "queued"
    assert 0 <= shown["line"]["waited_seconds"] < 60


def test_the_default_still_answers_a_full_pool_with_429_and_spends_nothing(client):
    start(client)

    refused = start(client, "refuse")

    assert refused.status_code == 429
    assert refused.json()["error"] == "concurrency_limit"
    assert remaining(refused) == "r=4"
    assert Operation.objects.count() == 1


@pytest.mark.parametrize("value", ["later", "WAIT", 1, None, True, ["wait"]])
def test_a_when_busy_that_is_neither_refuse_nor_wait_is_a_400_that_spends_nothing(client, value):
    response = start(client, value)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert '\'when_busy\' is "refuse" (the default) or "wait"' in response.json()["detail"]
    assert not Operation.objects.exists()
    assert remaining(start(client)) == "r=4"


def test_a_full_line_is_a_429_queue_full_that_creates_nothing_and_spends_nothing(client, configure):
    configure(max_waiting_per_client=1)
    start(client), start(client, "wait")

    refused = start(client, "wait")

    assert refused.status_code == 429
    assert refused.json()["error"] == "queue_full"
    assert int(refused["Retry-After"]) >= 1
    assert remaining(refused) == "r=3"
    assert Operation.objects.filter(status=Status.WAITING).count() == 1


def test_a_client_at_its_share_gets_429_client_share_while_another_client_starts(client, configure):
    configure(max_concurrent_operations=2, max_slots_per_client=1)
    start(client)

    refused = start(client)
    other = start(client, REMOTE_ADDR="192.0.2.7")

    assert refused.status_code == 429
    assert refused.json()["error"] == "client_share"
    assert refused.json()["estimate"]["seconds"] >= 1
    assert other.status_code == 202
    assert other.json()["status"] == "queued"


def test_a_waiting_operation_can_be_cancelled_and_is_never_started(client):
    holder = start(client).json()
    waiting = start(client, "wait").json()

    cancelled = client.post(f"/api/operations/{waiting['id']}/cancel")
    (hold,) = slots.holds_of(holder["id"])
    line.release(hold)

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert Operation.objects.get(pk=waiting["id"]).started_at is None
    assert not slots.holds_of(waiting["id"])


def test_a_waiting_operations_etag_does_not_move_with_its_expected_start(client):
    from api.shapes import etag_of

    start(client)
    body = start(client, "wait").json()
    later = body | {"line": body["line"] | {"expected_start_in_seconds": 3}}
    served = body | {"line": body["line"] | {"position": 2}}

    assert etag_of(later) == etag_of(body)
    assert etag_of(served) != etag_of(body)
    shown = client.get(f"/api/operations/{body['id']}", headers={"If-None-Match": etag_of(body)})
    assert shown.status_code == 304
