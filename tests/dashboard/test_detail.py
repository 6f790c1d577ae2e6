"""An operation's own page: what it shows to whom, its live part, cancel and retries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.detail import duration_text
from dashboard.state import CONTENT_HEADER, STATE_HEADER
from operations.admission import admit
from operations.models import Operation, Slot, Status

pytestmark = pytest.mark.django_db

MINE = "ip:127.0.0.1"  # the test client's own client key
THEIRS = "ip:10.0.0.9"


@pytest.fixture(autouse=True)
def limits(configure):
    configure(
        max_concurrent_operations=2,
        enable_rate_limiting=True,
        requests_per_minute=3,
        allow_anonymous=True,
    )


def finished(client_key: str = MINE, **fields) -> Operation:
    """An operation that ran 75 s after waiting 3 s in the queue."""
    operation = admit("simulated", {"duration": 75, "data": {"job": 7}}, client_key=client_key)
    Slot.objects.filter(operation=operation).vacate()
    created = timezone.now() - timedelta(minutes=5)
    values = {
        "status": Status.COMPLETED,
        "created_at": created,
        "started_at": created + timedelta(seconds=3),
        "finished_at": created + timedelta(seconds=78),
        "progress": 100,
        "result": {"duration": 75},
    } | fields
    Operation.objects.filter(pk=operation.pk).update(**values)
    operation.refresh_from_db()
    return operation


def page(client, operation: Operation) -> str:
    response = client.get(f"/operations/{operation.id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_owner_sees_params_result_times_and_durations(client):
    operation = finished(
        message_history=[{"at": "2026-11-30T10:00:01+00:00", "message": "step 1 of 2"}]
    )

    html = page(client, operation)

    assert str(operation.id) in html
    assert "&quot;job&quot;: 7" in html  # params, pretty-printed
    assert "&quot;processed_data&quot;" in html  # the result as the API shows it
    assert operation.created_at.strftime("%Y-%m-%d %H:%M:%S") in html
    assert re.search(r'data-testid="queued-for">3\.0 s<', html)
    assert re.search(r'data-testid="ran-for">1 min 15 s<', html)
    assert "10:00:01" in html
    assert "step 1 of 2" in html
    assert 'data-testid="retry"' in html
    assert f"/?retry_of={operation.id}" in html


def test_another_client_sees_status_and_times_but_no_params_result_or_error(client):
    operation = finished(THEIRS, status=Status.FAILED, error="secret reason", result=None)

    html = page(client, operation)

    assert "failed" in html
    assert "job" not in html
    assert "secret reason" not in html
    assert THEIRS not in html
    assert 'data-testid="retry"' not in html


def test_a_traceback_is_shown_to_staff_only(client, django_user_model):
    operation = finished(
        status=Status.FAILED, error="LookupError: x", traceback="Traceback ...\nin deep_failure"
    )
    assert "in deep_failure" not in page(client, operation)  # the owner, not staff

    staff = django_user_model.objects.create_user("sam", password="x" * 12, is_staff=True)
    client.force_login(staff)

    html = page(client, operation)
    assert "LookupError: x" in html
    assert "in deep_failure" in html


def test_a_held_slot_and_its_lease_are_shown(client):
    operation = admit("simulated", {"duration": 9}, client_key=MINE)
    slot = Slot.objects.get(operation=operation)

    html = page(client, operation)

    assert (
        f"Holds slot <strong>{slot.number}</strong> under lease version {slot.lease_version}"
        in html
    )
    assert 'aria-label="Cancel ' + operation.short_id in html


def test_an_unknown_operation_is_a_404(client):
    assert client.get("/operations/8d6a1c42-3a1e-4f6e-9d51-6b1f8c9d0e11/").status_code == 404
    assert client.get("/operations/not-a-uuid/").status_code == 404
    live = client.get("/operations/8d6a1c42-3a1e-4f6e-9d51-6b1f8c9d0e11/live/")
    assert live.status_code == 404


def test_the_live_part_answers_204_until_the_operation_changes(client):
    operation = admit("simulated", {"duration": 9}, client_key=MINE)
    url = f"/operations/{operation.id}/live/"
    first = client.get(url)
    assert first.status_code == 200
    assert first.content.decode().lstrip().startswith('<div id="live"')

    unchanged = client.get(url, headers={CONTENT_HEADER: first[CONTENT_HEADER]})
    assert unchanged.status_code == 204

    Operation.objects.filter(pk=operation.pk).update(status=Status.RUNNING, progress=40)
    changed = client.get(url, headers={CONTENT_HEADER: first[CONTENT_HEADER]})
    assert changed.status_code == 200
    assert changed[STATE_HEADER] != first[STATE_HEADER]
    assert 'value="40"' in changed.content.decode()


def test_cancel_from_the_page_asks_first_for_a_running_operation(client):
    operation = admit("simulated", {"duration": 9}, client_key=MINE)
    Operation.objects.filter(pk=operation.pk).update(status=Status.RUNNING)

    assert f'hx-confirm="Cancel running operation {operation.short_id}?"' in page(client, operation)
    response = client.post(f"/operations/{operation.id}/cancel/")

    assert response.status_code == 200
    operation.refresh_from_db()
    assert operation.cancel_requested


def test_another_clients_operation_cannot_be_cancelled_from_its_page(client):
    operation = admit("simulated", {"duration": 9}, client_key=THEIRS)

    response = client.post(f"/operations/{operation.id}/cancel/")

    assert response.status_code == 403
    operation.refresh_from_db()
    assert not operation.cancel_requested
    assert operation.status == Status.QUEUED


def test_retry_starts_a_new_operation_recorded_as_the_retry(client):
    original = finished(status=Status.FAILED, error="boom")

    response = client.post(f"/operations/{original.id}/retry/")

    retry = Operation.objects.get(retry_of=original)
    assert response.status_code == 302
    assert response["Location"] == f"/operations/{retry.id}/"
    assert (retry.kind, retry.params, retry.client_key) == (original.kind, original.params, MINE)
    assert original.short_id in page(client, retry)  # "Retry of <id>", linked
    assert retry.short_id in page(client, original)  # "Retried as <id>"


def test_retry_refused_for_a_full_pool_creates_nothing_and_spends_nothing(client):
    original = finished()
    for _ in range(2):
        admit("simulated", {"duration": 9}, client_key=THEIRS)

    response = client.post(f"/operations/{original.id}/retry/")

    assert response.status_code == 429
    assert "All slots are busy" in response.content.decode()
    assert not Operation.objects.filter(retry_of=original).exists()
    budget = client.get("/dashboard/live/").content.decode()
    assert "<strong>3</strong> of 3 starts left" in budget


def test_another_clients_operation_cannot_be_retried(client):
    original = finished(THEIRS)

    response = client.post(f"/operations/{original.id}/retry/")

    assert response.status_code == 403
    assert not Operation.objects.filter(retry_of=original).exists()


def test_retry_with_changes_fills_the_start_form_and_records_the_retry(client):
    original = finished()

    form = client.get(f"/?retry_of={original.id}").content.decode()
    assert f'name="retry_of" value="{original.id}"' in form
    assert re.search(r'name="duration"[^>]*value="75', form)
    assert "&quot;job&quot;: 7" in form

    data = {"kind": "simulated", "duration": "4", "data": '{"job": 8}', "retry_of": original.id}
    response = client.post("/dashboard/start/", data)

    assert response.status_code == 201
    retry = Operation.objects.get(retry_of=original)
    assert retry.params == {"duration": 4.0, "fail": False, "data": {"job": 8}}
    assert f"/operations/{retry.id}/" in response.content.decode()


def test_retry_with_changes_of_another_clients_operation_is_refused_and_starts_nothing(client):
    original = finished(THEIRS)

    assert "may retry it" in client.get(f"/?retry_of={original.id}").content.decode()
    data = {"kind": "simulated", "duration": "4", "retry_of": original.id}
    response = client.post("/dashboard/start/", data)

    assert response.status_code == 403
    assert Operation.objects.count() == 1
    budget = client.get("/dashboard/live/").content.decode()
    assert "<strong>3</strong> of 3 starts left" in budget


@pytest.mark.parametrize("value", ["nonsense", "8d6a1c42-3a1e-4f6e-9d51-6b1f8c9d0e11"])
def test_retry_with_changes_of_no_operation_is_a_400(client, value):
    response = client.post("/dashboard/start/", {"kind": "simulated", "retry_of": value})

    assert response.status_code == 400
    assert "to retry" in response.content.decode()
    assert not Operation.objects.exists()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.42, "0.4 s"), (12.4, "12 s"), (185, "3 min 5 s"), (7800, "2 h 10 min")],
)
def test_durations_read_in_plain_words(seconds, text):
    assert duration_text(timedelta(seconds=seconds)) == text


def test_a_waiting_operation_shows_its_place_and_once_served_how_long_it_waited(client, configure):
    from operations import line, slots

    configure(max_concurrent_operations=1)
    holder = admit("simulated", {}, client_key="ip:127.0.0.1")
    waiting = admit("simulated", {}, client_key="ip:127.0.0.1", when_busy="wait")

    before = client.get(f"/operations/{waiting.id}/").content.decode()
    (hold,) = slots.holds_of(holder.id)
    line.release(hold)
    after = client.get(f"/operations/{waiting.id}/").content.decode()

    assert "Number <strong>1</strong> of 1 in line for a slot" in before
    assert 'data-testid="waited-for"' not in before
    assert "in line for a slot" not in after
    assert 'data-testid="waited-for">0.' in after  # well under a second
