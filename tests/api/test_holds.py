"""Held answers: what a view asks the ASGI layer to wait for, and what it answers without it.

Through Django's test client there is no holding layer (as under WSGI): ETags and
304s work, a `wait` answers at once, and `Prefer: wait` is not applied. A view
that may hold (the scope says so) marks its answer with a `Hold`, which
`tests/coordhub/test_holding.py` follows through a real daphne.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from api import holds, views
from api.holds import CAN_HOLD, HOLD_HEADER, RECHECK, Hold, PerClientBound
from operations import feed
from operations.admission import admit
from operations.cancellation import cancel
from operations.exceptions import InvalidRequest, OperationEnded
from operations.feed import ChangeFeed, process_feed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def roomy_limits(configure):
    configure(enable_rate_limiting=False, allow_anonymous=True)


@pytest.fixture(autouse=True)
def quiet_feed(monkeypatch):
    """A process feed that listens to nothing: these views only read its version."""
    monkeypatch.setattr(feed, "_feed", ChangeFeed(lambda listening: None))


def started(client, **headers):
    body = json.dumps({"kind": "simulated", "params": {"duration": 60}})
    return client.post("/api/operations", body, content_type="application/json", **headers)


def test_every_operation_answer_carries_an_etag_that_a_get_then_matches(client):
    start = started(client)
    shown = client.get(start["Location"])
    cancelled = client.post(start["Location"] + "/cancel")

    assert start["ETag"] == shown["ETag"]
    assert cancelled["ETag"] != shown["ETag"]
    assert client.get(start["Location"])["ETag"] == cancelled["ETag"]


def test_if_none_match_with_the_current_etag_answers_304_with_it(client):
    start = started(client)

    answer = client.get(start["Location"], headers={"If-None-Match": start["ETag"]})

    assert answer.status_code == 304
    assert answer["ETag"] == start["ETag"]
    assert answer.content == b""


def test_without_the_holding_layer_a_wait_answers_at_once(client):
    start = started(client)

    began = time.monotonic()
    answer = client.get(start["Location"] + "?wait=30", headers={"If-None-Match": start["ETag"]})

    assert answer.status_code == 304
    assert time.monotonic() - began < 1
    assert HOLD_HEADER not in answer


def test_without_the_holding_layer_prefer_wait_is_not_applied(client):
    answer = started(client, headers={"Prefer": "wait=10"})

    assert answer.status_code == 202
    assert "Preference-Applied" not in answer


def test_a_changed_operation_answers_200_with_its_new_etag(client):
    start = started(client)
    client.post(start["Location"] + "/cancel")

    answer = client.get(start["Location"] + "?wait=5", headers={"If-None-Match": start["ETag"]})

    assert answer.status_code == 200
    assert answer["ETag"] != start["ETag"]
    assert answer.json()["message"] == "Cancelled"


@pytest.mark.parametrize("wait", ["61", "-1", "1.5", "abc", "1e3", "٣", "²"])
def test_a_wait_that_is_not_0_to_60_whole_seconds_is_a_400(client, wait):
    start = started(client)

    answer = client.get(f"{start['Location']}?wait={wait}")

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert "0 to 60" in answer.json()["detail"]


def holding_request(path: str, recheck: dict | None = None, **headers):
    request = RequestFactory().get(path, headers=headers)
    request.scope = {CAN_HOLD: True, **({RECHECK: recheck} if recheck else {})}
    request.user = AnonymousUser()
    return request


def test_a_view_that_may_hold_marks_its_304_with_what_to_wait_for():
    operation = admit("simulated", {"duration": 60}, client_key="ip:127.0.0.1")
    etag = views.operation(holding_request(f"/api/operations/{operation.id}"), operation.id)["ETag"]
    version = process_feed().current_version()

    answer = views.operation(
        holding_request(f"/api/operations/{operation.id}?wait=7", If_None_Match=etag),
        operation.id,
    )
    held = Hold.from_header(answer[HOLD_HEADER])

    assert answer.status_code == 304
    assert held.operation_id == str(operation.id)
    assert held.mode == "changed"
    assert held.recheck_path == f"/api/operations/{operation.id}"
    assert 6 < held.until - time.monotonic() <= 7
    assert held.seen_version >= version
    assert held.client_key == "ip:127.0.0.1"


def test_a_recheck_of_an_unfinished_start_holds_again_until_the_same_deadline():
    operation = admit("simulated", {"duration": 60}, client_key="ip:127.0.0.1")
    until = time.monotonic() + 3

    answer = views.operation(
        holding_request(f"/api/operations/{operation.id}", {"mode": "finished", "until": until}),
        operation.id,
    )

    assert Hold.from_header(answer[HOLD_HEADER]).until == until


def test_a_recheck_of_a_finished_start_answers_for_good():
    operation = admit("simulated", {"duration": 60}, client_key="ip:127.0.0.1")
    cancel(operation)
    request = holding_request(
        f"/api/operations/{operation.id}",
        {"mode": "finished", "until": time.monotonic() + 3},
        Prefer="wait=9",
    )

    answer = views.operation(request, operation.id)

    assert HOLD_HEADER not in answer
    assert answer.status_code == 200
    assert json.loads(answer.content)["status"] == "cancelled"
    assert answer["Preference-Applied"] == "wait=9"


def test_a_templates_start_that_ended_without_completing_is_a_409_saying_how():
    operation = admit("simulated", {"duration": 60}, client_key="ip:127.0.0.1")
    cancel(operation)
    request = holding_request(
        f"/api/operations/{operation.id}", {"mode": "templates", "until": time.monotonic() + 3}
    )

    with pytest.raises(OperationEnded) as ended:
        views.operation(request, operation.id)

    assert ended.value.status == 409
    assert ended.value.code == "operation_cancelled"
    assert ended.value.fields()["operation_id"] == str(operation.id)
    assert ended.value.fields()["operation_status"] == "cancelled"
    assert ended.value.fields()["reason"] == "Cancelled before it started."


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("wait=10", 10),
        ("WAIT = 5", 5),  # RFC 7240 allows whitespace around "="
        ("respond-async, wait=3", 3),
        ('wait="4"', 4),
        ("wait=600", 60),
        ("wait=-1", 0),
        ("wait=abc", 0),
        ("wait=٣", 0),
        ("return=minimal", 0),
        ("", 0),
    ],
)
def test_prefer_wait_is_read_leniently_and_capped(header, seconds):
    request = RequestFactory().post("/", headers={"Prefer": header} if header else {})

    assert holds.preferred_wait(request) == seconds


def test_wait_seconds_reads_whole_seconds_from_0_to_60():
    assert holds.wait_seconds(None, name="wait") == 0
    assert holds.wait_seconds("", name="wait") == 0
    assert holds.wait_seconds("60", name="wait") == 60
    with pytest.raises(InvalidRequest, match="'61'"):
        holds.wait_seconds("61", name="wait")


def test_a_hold_travels_in_its_header_unchanged():
    held = Hold(str(uuid.uuid4()), 12.5, 3, "/api/operations/x", "finished", "user:1")

    assert Hold.from_header(held.header()) == held


def test_a_per_client_bound_refuses_past_its_limit_and_frees_on_release():
    bound = PerClientBound(2, total_limit=4)

    assert [bound.reserve("a"), bound.reserve("a"), bound.reserve("a")] == [True, True, False]
    assert bound.refusal("a").startswith("This client already has 2 waiting requests open")
    assert bound.reserve("b")
    bound.release("a")
    assert bound.reserve("a")
    assert bound.total() == 3


def test_a_per_client_bound_refuses_everyone_past_its_total():
    bound = PerClientBound(2, total_limit=3)

    assert [bound.reserve(key) for key in "abcd"] == [True, True, True, False]
    assert bound.refusal("d") == (
        "This server already holds 3 waiting requests, its most; try again shortly."
    )
    bound.release("a")
    assert bound.reserve("d")


@pytest.mark.parametrize(
    ("if_none_match", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),  # a proxy that compresses weakens the ETag: still the same
        ('"x", "abc"', True),
        ("*", True),
        ('"abd"', False),
        ("", False),
    ],
)
def test_if_none_match_is_compared_weakly_as_rfc_9110_says(if_none_match, matches):
    assert holds.etag_matches('"abc"', if_none_match) is matches
    assert holds.etag_matches('W/"abc"', if_none_match) is matches


def test_a_very_long_number_is_a_400_for_wait_and_the_longest_wait_for_prefer():
    digits = "0" * 5000 + "1"

    with pytest.raises(InvalidRequest):
        holds.wait_seconds(digits, name="wait")
    assert (
        holds.preferred_wait(RequestFactory().post("/", headers={"Prefer": f"wait={digits}"})) == 1
    )
    long = RequestFactory().post("/", headers={"Prefer": "wait=" + "9" * 5000})
    assert holds.preferred_wait(long) == 60
