"""Rate limits on starting and reading, as a client sees them through the API."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import django_ratelimit.core
import pytest
from django.test import RequestFactory, override_settings
from django.utils import timezone

from api import limits
from coordhub.testing.services import free_port
from operations.admission import admit
from operations.models import Operation, Slot, Status
from operations.slots import holds_of, renew

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]

START_POLICY = '"start";q=3;w=60'


@pytest.fixture(autouse=True)
def limits_on(limits_for):
    limits_for(requests_per_minute=3, read_requests_per_minute=100, max_concurrent_operations=50)


def start(client, **extra):
    body = json.dumps({"kind": "simulated", "params": {}})
    return client.post("/api/operations", body, content_type="application/json", **extra)


def rate_limit_field(response) -> dict[str, int]:
    """Parse `"start";r=2;t=59` into {"r": 2, "t": 59}."""
    match = re.fullmatch(r'"(\w+)";r=(\d+);t=(\d+)', response["RateLimit"])
    assert match, response["RateLimit"]
    return {"r": int(match[2]), "t": int(match[3])}


def test_the_fourth_start_in_a_minute_is_429_with_the_time_left_in_the_window(client):
    accepted = [start(client) for _ in range(3)]
    refused = start(client)

    assert [response.status_code for response in accepted] == [202, 202, 202]
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert "3 starts per minute" in refused.json()["detail"]
    retry_after = int(refused["Retry-After"])
    assert 1 <= retry_after <= 60
    assert retry_after == rate_limit_field(refused)["t"]
    assert refused.json()["retry_after"] == retry_after


def test_retry_after_counts_down_as_the_window_passes(client, clock):
    for _ in range(3):
        start(client)
    first = int(start(client)["Retry-After"])

    clock.now += 20
    later = start(client)

    assert later.status_code == 429
    assert first >= 58
    assert int(later["Retry-After"]) == first - 20


def test_a_new_window_accepts_starts_again(client, clock):
    for _ in range(3):
        start(client)
    refused = start(client)

    clock.now += int(refused["Retry-After"])
    response = start(client)

    assert response.status_code == 202
    assert rate_limit_field(response)["r"] == 2


def test_a_start_counted_as_its_window_ends_is_admitted_not_refused_as_unavailable(
    client, clock, monkeypatch
):
    """A slow request may be counted in a window's last second and finish in the next."""
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1")
    clock.now += limits.peek(request, limits.START).reset_seconds - 1  # the window's last second
    spend = limits.spend

    def count_slowly(request, group):
        spent = spend(request, group)
        if group == limits.START:
            clock.now += 1.5  # the start is counted, then the window ends
        return spent

    monkeypatch.setattr(limits, "spend", count_slowly)
    response = start(client)

    assert response.status_code == 202
    assert rate_limit_field(response) == {"r": 2, "t": 1}


def test_start_responses_carry_the_ietf_draft_ratelimit_fields(client):
    responses = [start(client) for _ in range(4)]

    assert [response["RateLimit-Policy"] for response in responses] == [START_POLICY] * 4
    assert [rate_limit_field(response)["r"] for response in responses] == [2, 1, 0, 0]
    assert all(response["RateLimit"].startswith('"start";') for response in responses)


def test_a_rate_limited_start_creates_nothing_and_holds_no_slot(client):
    for _ in range(3):
        start(client)

    refused = start(client)

    assert refused.status_code == 429
    assert Operation.objects.count() == 3
    assert Slot.objects.held().count() == 3


def test_reads_do_not_spend_the_budget_for_starting(client):
    for _ in range(20):
        assert client.get("/api/operations").status_code == 200

    responses = [start(client) for _ in range(3)]

    assert [response.status_code for response in responses] == [202, 202, 202]
    assert rate_limit_field(responses[0])["r"] == 2


def test_reads_have_their_own_limit_that_leaves_starts_working(client, configure):
    configure(read_requests_per_minute=5)
    created = start(client).json()

    reads = [client.get("/api/operations") for _ in range(4)]
    reads.append(client.get(f"/api/operations/{created['id']}"))
    refused = client.get("/api/operations")
    still_starting = start(client)

    assert [response.status_code for response in reads] == [200] * 5
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert "5 reads per minute" in refused.json()["detail"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["RateLimit-Policy"] == '"read";q=5;w=60'
    assert client.get(f"/api/operations/{created['id']}").status_code == 429
    assert still_starting.status_code == 202
    assert rate_limit_field(still_starting)["r"] == 1


def test_without_rate_limiting_nothing_is_429_and_no_ratelimit_fields_are_sent(client, configure):
    configure(enable_rate_limiting=False, read_requests_per_minute=1)

    starts = [start(client) for _ in range(10)]
    reads = [client.get("/api/operations") for _ in range(10)]

    assert {response.status_code for response in starts} == {202}
    assert {response.status_code for response in reads} == {200}
    for response in starts:
        assert "RateLimit" not in response
        assert "RateLimit-Policy" not in response


def test_no_free_slot_is_429_concurrency_limit_and_creates_nothing(client, configure):
    configure(max_concurrent_operations=1)
    first = start(client)

    second = start(client)

    assert first.status_code == 202
    assert second.status_code == 429
    assert second.json()["error"] == "concurrency_limit"
    assert "All 1 operation slots are busy" in second.json()["detail"]
    assert int(second["Retry-After"]) >= 1
    assert Operation.objects.count() == 1
    assert Slot.objects.held().count() == 1


def test_concurrency_limit_retry_after_is_the_estimate_and_does_not_follow_lease_renewal(
    client, configure, monkeypatch
):
    configure(max_concurrent_operations=1)
    end = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: end)  # elapsed times stay exact
    for seconds in (8, 10, 30):
        Operation.objects.create(
            kind="simulated",
            status=Status.COMPLETED,
            started_at=end - timedelta(seconds=seconds),
            finished_at=end,
        )
    assert start(client).status_code == 202
    holder = Operation.objects.get(status=Status.QUEUED)
    Operation.objects.filter(pk=holder.pk).update(
        status=Status.RUNNING, started_at=end - timedelta(seconds=4)
    )
    estimate = {
        "seconds": 6,  # the median, 10 s, less the 4 s it has run
        "basis": "the one operation holding a slot to reach its kind's median duration "
        "(simulated: median of the last 3 completed, 10.0 s)",
    }

    refused = start(client)
    [hold] = holds_of(holder.pk)
    assert renew(hold, lease_seconds=3600)
    after_renewal = start(client)

    for response in (refused, after_renewal):
        assert response.status_code == 429
        assert response.json()["error"] == "concurrency_limit"
        assert response["Retry-After"] == "6"
        assert response.json()["retry_after"] == 6
        assert response.json()["estimate"] == estimate
        assert response.json()["detail"] == (
            "All 1 operation slots are busy; a slot is expected to free in about 6 s."
        )


def unreachable_redis() -> dict:
    return {
        "default": {
            "BACKEND": "coordhub.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }


def test_when_the_cache_is_down_starts_fail_closed_and_reads_keep_working(client):
    existing = admit("simulated", {}, client_key="ip:127.0.0.1")

    with override_settings(CACHES=unreachable_redis()):
        refused = start(client)
        seed = client.post(
            "/api/protected-operation", json.dumps({"a": 1}), content_type="application/json"
        )
        listing = client.get("/api/operations")
        shown = client.get(f"/api/operations/{existing.id}")
        health = client.get("/api/health")

    for response in (refused, seed):
        assert response.status_code == 503
        assert response.json()["error"] == "rate_limit_unavailable"
        assert "rate-limit store is unreachable" in response.json()["detail"]
        assert int(response["Retry-After"]) >= 1
    assert Operation.objects.count() == 1
    assert Slot.objects.held().count() == 1
    assert listing.status_code == 200
    assert [operation["id"] for operation in listing.json()["operations"]] == [str(existing.id)]
    assert shown.status_code == 200
    assert shown.json()["id"] == str(existing.id)
    assert health.status_code == 503
    assert "cache" in health.json()["failed"]
    assert health.json()["checks"]["cache"]["status"] == "down"


def test_a_forged_x_forwarded_for_does_not_buy_a_fresh_budget(client):
    forged = [start(client, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}") for n in range(4)]

    assert [response.status_code for response in forged] == [202, 202, 202, 429]
    keys = set(Operation.objects.values_list("client_key", flat=True))
    assert keys == {"ip:127.0.0.1"}


def test_clients_at_different_addresses_have_separate_budgets(client):
    for _ in range(3):
        start(client)

    other = start(client, REMOTE_ADDR="192.0.2.10")

    assert start(client).status_code == 429
    assert other.status_code == 202


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ({"kind": "simulated", "params": {"duration": "soon"}}, "application/json"),
        ({"kind": "nope"}, "application/json"),
        ({"params": {}}, "application/json"),
        ("kind=simulated", "application/x-www-form-urlencoded"),
    ],
)
def test_bad_input_spends_none_of_the_start_budget(client, body, content_type):
    payload = json.dumps(body) if content_type == "application/json" else body
    for _ in range(5):
        refused = client.post("/api/operations", payload, content_type=content_type)
        assert 400 <= refused.status_code < 500
        assert "RateLimit" not in refused

    assert [start(client).status_code for _ in range(4)] == [202, 202, 202, 429]


def test_starts_refused_for_a_full_pool_cost_nothing_and_say_so(client, configure):
    configure(max_concurrent_operations=1)
    assert start(client).status_code == 202

    refusals = [start(client) for _ in range(5)]

    assert {response.json()["error"] for response in refusals} == {"concurrency_limit"}
    assert [rate_limit_field(response)["r"] for response in refusals] == [2] * 5
    Slot.objects.update(operation=None, lease_expires_at=None)  # the first one ends
    assert [start(client).status_code for _ in range(3)] == [202, 429, 429]


def test_a_client_hammering_refused_starts_meets_the_attempt_limit(client, configure):
    configure(start_attempts_per_minute=6)
    bad = json.dumps({"kind": "nope"})

    answers = [
        client.post("/api/operations", bad, content_type="application/json") for _ in range(7)
    ]

    assert [answer.status_code for answer in answers] == [400] * 6 + [429]
    assert answers[-1].json()["error"] == "rate_limited"
    assert "6 start attempts per minute" in answers[-1].json()["detail"]
    assert not Operation.objects.exists()


def test_the_templates_two_endpoints_share_one_start_budget(client):
    def templates(path: str):
        return client.post(path, json.dumps({"job": 1}), content_type="application/json")

    answers = [
        templates("/api/protected-operation"),
        templates("/api/resource-intensive-operation"),
        templates("/api/resource-intensive-operation"),
        templates("/api/protected-operation"),
    ]

    assert [answer.status_code for answer in answers] == [202, 202, 202, 429]
    kinds = set(Operation.objects.values_list("kind", "params__duration"))
    assert kinds == {("simulated", 2)}


def test_counts_are_django_ratelimits_own_keys_and_windows(client):
    start(client)
    start(client)

    request = RequestFactory().post("/api/operations", REMOTE_ADDR="127.0.0.1")
    theirs = django_ratelimit.core.get_usage(
        request, group=limits.START, key=lambda group, request: "ip:127.0.0.1", rate="3/m"
    )
    ours = limits.peek(request, limits.START)

    assert (
        (theirs["count"], theirs["time_left"] + 1)
        == (ours.count, ours.reset_seconds)
        == (
            2,
            ours.reset_seconds,
        )
    )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"kind": "simulated", "params": {"data": {"x": NaN}}}',
        b'{"kind": "simulated", "params": {"data": {"x": 1e999}}}',
        b'{"kind": "simulated", "params": {"data": {"x": "\\ud800"}}}',
        b'{"kind": "simulated", "params": {"data": {"x": "\\u0000"}}}',
        b'{"kind": "simulated", "params": {"data": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
    ],
    ids=["NaN", "1e999", "lone surrogate", "NUL", "5000 deep"],
)
def test_json_the_databases_cannot_store_is_a_400_that_costs_nothing(client, raw):
    refused = client.post("/api/operations", raw, content_type="application/json")

    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_json"
    assert limits.peek(RequestFactory().get("/", REMOTE_ADDR="127.0.0.1"), limits.START).count == 0
    assert not Operation.objects.exists()
