"""The JSON API contract, as a client sees it."""

from __future__ import annotations

import json
import uuid

import pytest

from operations.models import Operation, Slot, Status

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def roomy_limits(configure):
    configure(max_concurrent_operations=3, enable_rate_limiting=False, allow_anonymous=True)


def post_json(client, path: str, body: object, **extra):
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


def start(client, params: dict | None = None):
    return post_json(client, "/api/operations", {"kind": "simulated", "params": params or {}})


def test_start_answers_202_with_the_operation_and_its_location(client):
    response = start(client, {"duration": 5, "data": {"job": 1}})

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {
        "id",
        "kind",
        "params",
        "status",
        "progress",
        "message",
        "messages",
        "result",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "retry_of",
        "line",
        "details_visible",
    }
    assert body["line"] is None  # it took a slot at once
    assert body["details_visible"] is True
    assert body["kind"] == "simulated"
    assert body["status"] == "queued"
    assert body["params"] == {"duration": 5.0, "fail": False, "data": {"job": 1}}
    assert body["progress"] == 0
    assert body["started_at"] is None
    assert response["Location"] == f"/api/operations/{body['id']}"
    assert client.get(response["Location"]).json() == body


def test_list_shows_recent_operations_newest_first(client):
    ids = [start(client).json()["id"] for _ in range(3)]

    response = client.get("/api/operations")

    assert response.status_code == 200
    assert [operation["id"] for operation in response.json()["operations"]] == ids[::-1]


def test_list_rows_are_summaries_that_lead_to_the_whole_operation(client):
    created = start(client, {"duration": 5, "data": {"job": 1}})

    (row,) = client.get("/api/operations").json()["operations"]

    assert row == {
        key: created.json()[key]
        for key in (
            "id",
            "kind",
            "status",
            "progress",
            "message",
            "created_at",
            "started_at",
            "finished_at",
            "retry_of",
            "details_visible",
        )
    } | {"url": created["Location"]}
    assert client.get(row["url"]).json() == created.json()


def test_a_list_of_operations_with_60_kib_params_stays_small(client, configure):
    configure(max_concurrent_operations=50)
    data = {"blob": "x" * (60 * 1024)}
    for _ in range(50):
        assert start(client, {"duration": 5, "data": data}).status_code == 202

    response = client.get("/api/operations")

    assert len(response.json()["operations"]) == 50
    assert len(response.content) < 50 * 1024
    detail = client.get(response.json()["operations"][0]["url"]).json()
    assert detail["params"] == {"duration": 5.0, "fail": False, "data": data}


def test_unknown_operation_is_404_in_json(client):
    missing = uuid.uuid4()

    response = client.get(f"/api/operations/{missing}")

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": f"There is no operation {missing}.",
    }


def test_malformed_id_is_404_not_500(client):
    for path in ("/api/operations/not-a-uuid", "/api/operations/123/cancel"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_cancel_a_queued_operation_then_again_is_409(client):
    created = start(client).json()

    cancelled = client.post(f"/api/operations/{created['id']}/cancel")
    again = client.post(f"/api/operations/{created['id']}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert not Slot.objects.held().exists()
    assert again.status_code == 409
    assert again.json()["error"] == "already_finished"


def test_cancel_a_running_operation_asks_the_worker_to_stop(client):
    created = start(client).json()
    Operation.objects.filter(pk=created["id"]).update(status=Status.RUNNING)

    response = client.post(f"/api/operations/{created['id']}/cancel")

    assert response.status_code == 200
    assert response.json()["message"] == "Cancelling"
    assert Operation.objects.get(pk=created["id"]).cancel_requested


def test_cancel_of_an_unknown_operation_is_404(client):
    assert client.post(f"/api/operations/{uuid.uuid4()}/cancel").status_code == 404


def test_protected_operation_starts_the_seeds_two_second_simulation(client):
    response = post_json(client, "/api/protected-operation", {"customer": 42, "tags": ["a"]})

    assert response.status_code == 202
    body = response.json()
    assert body["kind"] == "simulated"
    assert body["params"] == {
        "duration": 2.0,
        "fail": False,
        "data": {"customer": 42, "tags": ["a"]},
    }


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "invalid_json"),
        ("[1, 2]", "application/json", 400, "invalid_json"),
        ('"text"', "application/json", 400, "invalid_json"),
        ("42", "application/json", 400, "invalid_json"),
        ("\xff\xfe", "application/json", 400, "invalid_json"),
        ('{"kind": "simulated"}', "text/plain", 415, "unsupported_media_type"),
        ("kind=simulated", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ('{"params": {}}', "application/json", 400, "invalid_request"),
        ('{"kind": "simulated", "extra": 1}', "application/json", 400, "invalid_request"),
        ('{"kind": "teleport"}', "application/json", 400, "unknown_kind"),
        ('{"kind": 5}', "application/json", 400, "unknown_kind"),
        ('{"kind": "simulated", "params": []}', "application/json", 400, "invalid_params"),
        (
            '{"kind": "simulated", "params": {"duration": "2"}}',
            "application/json",
            400,
            "invalid_params",
        ),
        (
            '{"kind": "simulated", "params": {"duration": 0}}',
            "application/json",
            400,
            "invalid_params",
        ),
        (
            '{"kind": "simulated", "params": {"duration": 5000}}',
            "application/json",
            400,
            "invalid_params",
        ),
        (
            '{"kind": "simulated", "params": {"speed": 1}}',
            "application/json",
            400,
            "invalid_params",
        ),
    ],
)
def test_bad_input_is_a_clear_4xx_and_creates_nothing(client, body, content_type, status, code):
    response = client.post("/api/operations", body, content_type=content_type)

    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.json()["detail"].endswith((".", ")"))
    assert Operation.objects.count() == 0
    assert not Slot.objects.held().exists()


def test_invalid_params_are_explained_per_field(client):
    response = start(client, {"duration": -1, "fail": "yes"})

    fields = response.json()["fields"]
    assert set(fields) == {"duration", "fail"}
    assert "duration" in response.json()["detail"]


def test_a_body_over_64_kib_is_413_and_creates_nothing(client):
    big = {"kind": "simulated", "params": {"data": {"blob": "x" * (65 * 1024)}}}

    response = post_json(client, "/api/operations", big)

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert Operation.objects.count() == 0


def test_unsupported_methods_are_405_with_allow(client):
    created = start(client).json()

    cases = [
        ("delete", "/api/operations", "GET, POST"),
        ("put", f"/api/operations/{created['id']}", "GET"),
        ("get", f"/api/operations/{created['id']}/cancel", "POST"),
        ("get", "/api/protected-operation", "POST"),
        ("post", "/api/health", "GET"),
    ]
    for method, path, allowed in cases:
        response = getattr(client, method)(path)
        assert response.status_code == 405, path
        assert response["Allow"] == allowed
        assert response.json()["error"] == "method_not_allowed"


def test_a_simulated_result_shows_its_data_back_without_storing_it_twice(client):
    created = start(client, {"duration": 1, "data": {"job": 7}}).json()
    Operation.objects.filter(pk=created["id"]).update(
        status=Status.COMPLETED, result={"duration": 1.0}
    )

    shown = client.get(f"/api/operations/{created['id']}").json()

    assert shown["result"] == {"duration": 1.0, "processed_data": {"job": 7}}
    assert Operation.objects.get(pk=created["id"]).result == {"duration": 1.0}
