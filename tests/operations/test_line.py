"""The line: waiting for a slot, the handover when one frees, fair turns, shares and bounds."""

from __future__ import annotations

from datetime import timedelta

import hypothesis
import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from hypothesis import HealthCheck
from hypothesis import strategies as st

from operations import counters, line, places, slots
from operations.admission import admit
from operations.cancellation import cancel
from operations.exceptions import (
    ClientShareFull,
    InvalidParams,
    KeyCapFull,
    KindCapFull,
    LineFull,
    NoFreeSlot,
)
from operations.maintenance import sweep
from operations.models import ClientTurn, Operation, Slot, Status
from tests.operations.racer import register_capped_kinds

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def two_slots(configure):
    configure(max_concurrent_operations=2, slot_lease_seconds=30)


def start(client: str, when_busy: str = "wait", **params: object) -> Operation:
    return admit("simulated", params, client_key=client, when_busy=when_busy)


def end(operation: Operation) -> None:
    """The operation's worker finishes it and frees its slot."""
    (hold,) = slots.holds_of(operation.id)
    assert line.release(hold)


def statuses(*operations: Operation) -> list[str]:
    return [Operation.objects.get(pk=operation.pk).status for operation in operations]


def test_a_start_that_may_wait_joins_the_line_holding_nothing_when_the_pool_is_full():
    running = [start("ip:a"), start("ip:b")]

    waiting = start("ip:c")

    assert statuses(*running, waiting) == ["queued", "queued", "waiting"]
    assert not Slot.objects.filter(operation=waiting).exists()
    assert waiting.task_id is None
    assert waiting.wait_reason == "concurrency_limit"
    assert counters.snapshot()[counters.WAITS] == 1


def test_the_default_still_refuses_a_full_pool_and_creates_nothing():
    start("ip:a"), start("ip:b")

    with pytest.raises(NoFreeSlot):
        start("ip:c", when_busy="refuse")

    assert Operation.objects.count() == 2


def test_a_freed_slot_goes_to_the_waiting_operation_in_the_same_transaction():
    first, _ = start("ip:a"), start("ip:b")
    waiting = start("ip:c")

    end(first)

    waiting.refresh_from_db()
    assert waiting.status == Status.QUEUED
    slot = Slot.objects.get(operation=waiting)
    task = DBTaskResult.objects.get(pk=waiting.task_id)
    assert task.args_kwargs["args"] == [str(waiting.id), slot.lease_version]
    assert 0 <= waiting.waited_seconds < 60


def test_slots_go_round_robin_between_clients_and_in_order_within_one():
    holders = [start("ip:x"), start("ip:x")]
    a = [start("ip:a") for _ in range(3)]
    b = start("ip:b")

    waited = [*a, b]
    given: list[Operation] = []

    def newly_given() -> None:
        fresh = [
            op for op, status in zip(waited, statuses(*waited), strict=True) if status != "waiting"
        ]
        (operation,) = [op for op in fresh if op not in given]
        given.append(operation)

    for holder in holders:
        end(holder)
        newly_given()
    for turn in range(2):
        end(given[turn])
        newly_given()

    # a[0] first (both unserved, a's came first), then b (a was just served), then a's in order.
    assert given == [a[0], b, a[1], a[2]]


def test_places_play_the_turns_out():
    start("ip:x"), start("ip:x")
    a = [start("ip:a") for _ in range(3)]
    b = start("ip:b")

    placed = places.places()

    assert [placed[operation.id].position for operation in [a[0], b, a[1], a[2]]] == [1, 2, 3, 4]
    assert {place.of for place in placed.values()} == {4}
    assert placed[a[0].id].expected_in_seconds <= placed[a[2].id].expected_in_seconds


def test_a_client_at_its_share_is_refused_or_waits_while_another_client_is_admitted(configure):
    configure(max_concurrent_operations=3, max_slots_per_client=1)
    mine = start("ip:a", when_busy="refuse")

    with pytest.raises(ClientShareFull) as refused:
        start("ip:a", when_busy="refuse")
    waiting = start("ip:a")
    other = start("ip:b", when_busy="refuse")

    assert refused.value.code == "client_share"
    assert statuses(mine, waiting, other) == ["queued", "waiting", "queued"]
    assert waiting.wait_reason == "client_share"


def test_a_waiting_client_at_its_share_is_passed_over_for_the_next_client(configure):
    configure(max_concurrent_operations=2, max_slots_per_client=1)
    a_running, b_running = start("ip:a"), start("ip:b")
    a_waiting = start("ip:a")
    c_waiting = start("ip:c")

    end(b_running)

    assert statuses(a_running, a_waiting, c_waiting) == ["queued", "waiting", "queued"]

    end(a_running)

    assert statuses(a_waiting) == ["queued"]


def test_the_line_is_bounded_per_client_and_in_all(configure):
    configure(max_waiting_per_client=2, max_waiting_operations=3)
    start("ip:x"), start("ip:x")
    start("ip:a"), start("ip:a")

    with pytest.raises(LineFull) as per_client:
        start("ip:a")
    start("ip:b")
    with pytest.raises(LineFull) as in_all:
        start("ip:c")

    assert per_client.value.code == in_all.value.code == "queue_full"
    assert "For this client, 2 operations" in str(per_client.value)
    assert "In all, 3 operations" in str(in_all.value)
    assert Operation.objects.filter(status=Status.WAITING).count() == 3


def test_a_cancelled_waiting_operation_leaves_the_line_and_is_never_started():
    holder, _ = start("ip:a"), start("ip:b")
    cancelled, kept = start("ip:c"), start("ip:d")

    cancel(cancelled)
    end(holder)

    assert statuses(cancelled, kept) == ["cancelled", "queued"]
    assert Operation.objects.get(pk=cancelled.pk).error == "Cancelled while waiting for a slot."


def test_a_reclaimed_lease_goes_straight_to_the_line():
    lost = [start("ip:a"), start("ip:b")]
    waiting = start("ip:c")
    # Their workers died: nobody renews the leases, which run out.
    Slot.objects.held().update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    reclaimed = sweep().reclaimed

    assert reclaimed == 2
    assert statuses(*lost, waiting) == ["failed", "failed", "queued"]


def test_a_raised_limit_fills_from_the_line_at_the_next_sweep(configure):
    start("ip:a"), start("ip:b")
    waiting = [start("ip:c"), start("ip:d")]
    configure(max_concurrent_operations=3)

    sweep()

    assert statuses(*waiting) == ["queued", "waiting"]


@pytest.fixture
def capped_kinds():
    """ "capped": one at a time; "keyed": one at a time per account."""
    from operations.kinds import unregister

    register_capped_kinds()
    yield
    unregister("capped")
    unregister("keyed")


def test_a_kind_at_its_cap_is_refused_or_waits_while_other_kinds_start(configure, capped_kinds):
    configure(max_concurrent_operations=3)
    first = admit("capped", {}, client_key="ip:a")

    with pytest.raises(KindCapFull) as refused:
        admit("capped", {}, client_key="ip:b")
    waiting = admit("capped", {}, client_key="ip:b", when_busy="wait")
    other = start("ip:c", when_busy="refuse")

    assert refused.value.code == "kind_limit"
    assert statuses(first, waiting, other) == ["queued", "waiting", "queued"]

    end(first)

    assert statuses(waiting) == ["queued"]


def test_one_report_per_account_at_a_time(configure, capped_kinds):
    configure(max_concurrent_operations=3)
    first = admit("keyed", {"account": "acme"}, client_key="ip:a")

    with pytest.raises(KeyCapFull) as refused:
        admit("keyed", {"account": "acme"}, client_key="ip:b")
    same = admit("keyed", {"account": "acme"}, client_key="ip:b", when_busy="wait")
    other = admit("keyed", {"account": "globex"}, client_key="ip:b")

    assert refused.value.code == "key_limit"
    assert first.concurrency_key == "acme"
    assert statuses(first, same, other) == ["queued", "waiting", "queued"]


def test_a_waiting_operation_at_its_kinds_cap_is_passed_over_for_the_next(capped_kinds):
    running_export, running = admit("capped", {}, client_key="ip:a"), start("ip:b")
    blocked = admit("capped", {}, client_key="ip:c", when_busy="wait")
    next_one = start("ip:d")

    end(running)

    assert statuses(running_export, blocked, next_one) == ["queued", "waiting", "queued"]


def test_caps_must_be_whole_numbers_of_one_or_more():
    from django import forms

    from operations.kinds import register

    with pytest.raises(ValueError, match="whole number of 1 or more"):
        register("never", forms.Form, max_concurrent=0)


@hypothesis.settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@hypothesis.given(
    lines=st.lists(st.tuples(st.sampled_from("abcd"), st.booleans()), min_size=1, max_size=14),
    served=st.dictionaries(st.sampled_from("abcd"), st.integers(0, 5), max_size=4),
)
def test_one_operations_place_is_its_place_in_the_whole_line_played_out(lines, served):
    """`place_of` (one row per client) agrees with `places` (the turn played out) on any line."""
    Operation.objects.all().delete()
    ClientTurn.objects.all().delete()
    moment = timezone.now()
    for number, (client, fronted) in enumerate(lines):
        Operation.objects.create(
            kind="simulated",
            status=Status.WAITING,
            client_key=f"ip:{client}",
            created_at=moment + timedelta(seconds=number),
            moved_to_front_at=moment + timedelta(seconds=number) if fronted else None,
        )
    for client, minutes in served.items():
        ClientTurn.objects.create(
            client_key=f"ip:{client}", served_at=moment - timedelta(minutes=minutes)
        )

    whole = places.places()

    for operation in Operation.objects.all():
        assert places.place_of(operation) == whole[operation.id]
    assert sorted(place.position for place in whole.values()) == list(range(1, len(lines) + 1))


def test_a_holder_past_its_lease_still_counts_against_its_cap_until_reclaimed(capped_kinds):
    slow = admit("keyed", {"account": "acme"}, client_key="ip:a")
    # Its worker is slow, not dead: it may still renew, so its key stays taken.
    Slot.objects.filter(operation=slow).update(lease_expires_at=timezone.now() - timedelta(1))

    with pytest.raises(KeyCapFull):
        admit("keyed", {"account": "acme"}, client_key="ip:b")

    assert Slot.objects.held().count() == 1


def test_a_concurrency_key_that_cannot_be_worked_out_is_refused_as_invalid_params():
    from django import forms

    from operations.kinds import register, unregister

    class Params(forms.Form):
        number = forms.IntegerField(required=False)

    register("keyed-by-number", Params, concurrency_key=lambda params: params["number"])(
        lambda context, **params: None
    )
    register("keyed-with-nul", Params, concurrency_key=lambda params: "a\x00b")(
        lambda context, **params: None
    )
    try:
        with pytest.raises(InvalidParams, match="concurrency key cannot be worked out"):
            admit("keyed-by-number", {}, client_key="ip:a")  # an unset number is left out
        with pytest.raises(InvalidParams, match="holds NUL"):
            admit("keyed-with-nul", {}, client_key="ip:a")
    finally:
        unregister("keyed-by-number")
        unregister("keyed-with-nul")
    assert not Operation.objects.exists()


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_cancelling_while_a_start_joins_the_line_never_deadlocks(configure, monkeypatch):
    """Cancel locks its operation's row and later frees the slot for the line; a start that
    may wait takes the line's lock and may fail that same operation, its lease run out."""
    import threading
    import time

    from django.db import connection

    configure(max_concurrent_operations=1)
    queued = start("ip:x")
    Slot.objects.filter(operation=queued).update(lease_expires_at=timezone.now() - timedelta(1))
    release_operation = line.release_operation

    def slowly(operation_id):
        time.sleep(1.0)  # between the row lock and the line's lock, as a busy database may
        return release_operation(operation_id)

    monkeypatch.setattr(line, "release_operation", slowly)
    outcomes: dict[str, str] = {}

    def run(name: str, call, delay: float) -> None:
        time.sleep(delay)
        try:
            call()
            outcomes[name] = "ok"
        except Exception as exc:
            outcomes[name] = repr(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=("cancel", lambda: cancel(queued), 0)),
        threading.Thread(target=run, args=("start", lambda: start("ip:y"), 0.3)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes == {"cancel": "ok", "start": "ok"}
