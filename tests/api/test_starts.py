"""Starting an operation for a request: validated first, the budget spent, refusals refunded."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import OperationalError, connection
from django.test import Client, RequestFactory
from django.utils import timezone

from api import limits
from api.starts import start_operation
from operations import refusals
from operations.exceptions import NoFreeSlot, RateLimited
from operations.models import Operation, RefusalCount, Slot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


@pytest.fixture(autouse=True)
def limits_on(limits_for):
    limits_for(requests_per_minute=2, max_concurrent_operations=1)


def request():
    made = RequestFactory().post("/api/operations", REMOTE_ADDR="127.0.0.1")
    made.user = AnonymousUser()
    return made


def spent() -> int:
    return limits.peek(request(), limits.START).count


def test_a_start_spends_one_start_and_admits_the_operation_for_this_client():
    started = start_operation(request(), "simulated", {"duration": 5})

    assert started.operation.client_key == "ip:127.0.0.1"
    assert Slot.objects.get(operation=started.operation)
    assert (started.usage.limit, started.usage.remaining) == (2, 1)


@pytest.mark.parametrize(
    ("slots", "refusal", "remaining_after"),
    [(1, NoFreeSlot, 1), (5, RateLimited, 0)],
    ids=["full pool", "past the budget"],
)
def test_a_refused_start_admits_nothing_and_gives_its_start_back(
    configure, slots, refusal, remaining_after
):
    configure(max_concurrent_operations=slots)
    admitted = 1 if refusal is NoFreeSlot else 2
    for _ in range(admitted):
        start_operation(request(), "simulated", {"duration": 5})

    with pytest.raises(refusal) as refused:
        start_operation(request(), "simulated", {})

    assert refused.value.usage.remaining == remaining_after
    assert spent() == admitted
    assert Operation.objects.count() == admitted


def test_a_client_refused_for_a_full_pool_still_gets_its_whole_budget(configure):
    start_operation(request(), "simulated", {"duration": 5})
    for _ in range(5):
        with pytest.raises(NoFreeSlot):
            start_operation(request(), "simulated", {})

    configure(max_concurrent_operations=5)
    start_operation(request(), "simulated", {})

    with pytest.raises(RateLimited):
        start_operation(request(), "simulated", {})
    assert Operation.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_refusals_racing_admissions_never_admit_past_the_limit_and_cost_nothing(limits_for):
    limits_for(requests_per_minute=4, max_concurrent_operations=2)
    bodies = [
        {"kind": "simulated", "params": {"duration": "x"}} if n % 3 == 0 else LONG_START
        for n in range(24)
    ]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post_from_a_thread, bodies))

    statuses = [status for status, _ in answers]
    assert statuses.count(202) == 2, answers  # the pool, not the budget, is what refused
    assert statuses.count(400) == 8
    assert {error for status, error in answers if status == 429} <= {
        "concurrency_limit",
        "rate_limited",  # only while racing spends were in flight: given back at once
    }
    assert spent() == 2

    Slot.objects.update(operation=None, lease_expires_at=None)  # both operations end
    later = [post_from_a_thread(LONG_START) for _ in range(3)]
    assert later == [(202, None), (202, None), (429, "rate_limited")]


LONG_START = {"kind": "simulated", "params": {"duration": 60}}


def post_from_a_thread(body: dict) -> tuple[int, str | None]:
    try:
        response = Client().post(
            "/api/operations", json.dumps(body), content_type="application/json"
        )
        return response.status_code, response.json().get("error")
    finally:
        connection.close()


def post_start(client: Client, body: dict | None = None):
    body = body or LONG_START
    return client.post("/api/operations", json.dumps(body), content_type="application/json")


def refusals_counted() -> dict[str, int]:
    """Refusals counted for the charts in the last two minutes, by reason."""
    recent = RefusalCount.objects.filter(minute__gte=timezone.now() - timedelta(minutes=2))
    return dict(recent.values_list("reason", "count"))


def test_each_429_refusing_a_start_adds_one_to_its_minutes_count_and_a_start_adds_none(
    client, configure
):
    assert post_start(client).status_code == 202
    assert refusals_counted() == {}

    full = post_start(client)
    configure(max_concurrent_operations=5)
    assert post_start(client).status_code == 202  # the budget of 2 is spent
    limited = post_start(client)

    assert (full.status_code, full.json()["error"]) == (429, "concurrency_limit")
    assert (limited.status_code, limited.json()["error"]) == (429, "rate_limited")
    assert refusals_counted() == {"concurrency_limit": 1, "rate_limited": 1}


def test_a_flood_past_the_attempt_limit_is_refused_without_a_database_write(
    client, configure, django_assert_num_queries
):
    configure(start_attempts_per_minute=2)
    bad = {"kind": "nope"}
    answers = [post_start(client, bad).status_code for _ in range(2)]

    with django_assert_num_queries(0):
        answers += [post_start(client, bad).status_code for _ in range(20)]

    assert answers == [400] * 2 + [429] * 20
    assert refusals_counted() == {}


def test_a_database_failing_to_count_a_refusal_leaves_its_429(client, configure, monkeypatch):
    def fail(*args: object) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr(refusals, "add_one", fail)
    post_start(client)

    full = post_start(client)
    configure(max_concurrent_operations=5)
    post_start(client)
    limited = post_start(client)

    assert [full.status_code, limited.status_code] == [429, 429]
    assert not RefusalCount.objects.exists()
