"""Who sees what, through HTTP: everyone the progress, only the owner and staff the details."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from operations.models import Operation, Status

pytestmark = pytest.mark.django_db

PARAMS = {"duration": 5.0, "fail": False, "data": {"customer": "acme", "token": "s3cret"}}
ERROR = "The vendor refused key s3cret for customer acme."
RESULT = {"invoice": "acme-42"}
PRIVATE = {"params": None, "result": None, "error": None, "details_visible": False}
# A simulated result is shown with its data echoed back from the params (result_as_shown).
SHOWN_RESULT = RESULT | {"processed_data": PARAMS["data"]}
SHOWN = {"params": PARAMS, "result": SHOWN_RESULT, "error": ERROR, "details_visible": True}


@pytest.fixture(autouse=True)
def roomy_limits(configure):
    configure(max_concurrent_operations=3, enable_rate_limiting=False, allow_anonymous=True)


def signed_in(django_user_model, name: str, **flags: bool) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_user(name, password="x" * 12, **flags))
    return client


def start_and_fail(client: Client, **extra: str) -> str:
    """Start an operation as `client`, end it failed with a result; return its id."""
    body = json.dumps({"kind": "simulated", "params": PARAMS})
    response = client.post("/api/operations", body, content_type="application/json", **extra)
    assert response.status_code == 202
    operation_id = response.json()["id"]
    Operation.objects.filter(pk=operation_id).update(
        status=Status.FAILED, error=ERROR, result=RESULT, message="step 2 of 10"
    )
    return operation_id


def details(client: Client, operation_id: str, **extra: str) -> dict[str, object]:
    """The private fields of the detail and `details_visible` of the list's row."""
    shown = client.get(f"/api/operations/{operation_id}", **extra).json()
    (row,) = client.get("/api/operations", **extra).json()["operations"]
    assert row["details_visible"] == shown["details_visible"]
    assert {"params", "result", "error"}.isdisjoint(row)
    return {key: shown[key] for key in ("params", "result", "error", "details_visible")}


def test_another_user_sees_progress_but_not_params_result_or_error(django_user_model):
    ada, bob = signed_in(django_user_model, "ada"), signed_in(django_user_model, "bob")
    operation_id = start_and_fail(ada)

    shown = bob.get(f"/api/operations/{operation_id}").json()

    assert shown | PRIVATE == shown
    assert (shown["status"], shown["message"]) == ("failed", "step 2 of 10")
    assert details(bob, operation_id) == PRIVATE
    assert "s3cret" not in bob.get("/api/operations").content.decode()


def test_the_owner_and_staff_see_params_result_and_error(django_user_model):
    ada = signed_in(django_user_model, "ada")
    staff = signed_in(django_user_model, "carol", is_staff=True)
    operation_id = start_and_fail(ada)

    assert details(ada, operation_id) == SHOWN
    assert details(staff, operation_id) == SHOWN


def test_anonymous_clients_are_told_apart_by_address():
    first, second = Client(), Client()
    operation_id = start_and_fail(first, REMOTE_ADDR="198.51.100.7")

    assert details(first, operation_id, REMOTE_ADDR="198.51.100.7") == SHOWN
    assert details(second, operation_id, REMOTE_ADDR="198.51.100.8") == PRIVATE


def test_an_anonymous_neighbour_does_not_see_a_signed_in_users_details(django_user_model):
    ada = signed_in(django_user_model, "ada")
    operation_id = start_and_fail(ada)

    assert details(Client(), operation_id) == PRIVATE
