from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from operations import line
from operations.exceptions import NoFreeSlot
from operations.models import Operation, Slot, Status
from operations.slots import (
    claim_slot,
    count_live_holders,
    ensure_slots,
    release,
    renew,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def three_slots():
    ensure_slots(3)


def new_operation(status: Status = Status.QUEUED) -> Operation:
    return Operation.objects.create(kind="simulated", status=status)


def claim(limit: int = 3, lease_seconds: int = 30):
    return claim_slot(new_operation(), limit=limit, lease_seconds=lease_seconds)


def expire(hold) -> None:
    Slot.objects.filter(number=hold.slot_number).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_claims_fill_the_slots_then_refuse():
    holds = [claim() for _ in range(3)]

    with pytest.raises(NoFreeSlot) as refused:
        claim()

    assert sorted(hold.slot_number for hold in holds) == [1, 2, 3]
    assert Slot.objects.held().count() == 3
    assert refused.value.limit == 3
    assert 1 <= refused.value.retry_after <= 30
    assert "All 3 operation slots are busy" in str(refused.value)


def refused(limit: int = 3) -> NoFreeSlot:
    """The refusal of a claim, rolled back on its own so the test can go on querying."""
    with pytest.raises(NoFreeSlot) as refusal, transaction.atomic():
        claim(limit=limit)
    return refusal.value


def completed(kind: str, seconds: float) -> None:
    end = timezone.now()
    Operation.objects.create(
        kind=kind,
        status=Status.COMPLETED,
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
    )


def test_a_refusal_estimates_from_the_holders_durations_not_their_leases():
    completed("simulated", 8)
    holds = [claim(lease_seconds=600) for _ in range(3)]  # queued: 8 s each still ahead

    before = refused()
    for hold in holds:
        renew(hold, lease_seconds=3600)
    after_renewal = refused()

    for refusal in (before, after_renewal):
        assert refusal.retry_after == 8
        assert refusal.basis == (
            "the soonest of 3 operations holding a slot to reach its kind's median duration "
            "(simulated: median of the last 1 completed, 8.0 s)"
        )
        assert str(refusal) == (
            "All 3 operation slots are busy; a slot is expected to free in about 8 s."
        )


def test_a_refusal_while_a_lowered_limit_drains_carries_the_same_estimate():
    completed("simulated", 8)
    holds = [claim(limit=3) for _ in range(3)]
    release(holds[0])  # slot 1 free, but slots 2 and 3 still hold the new limit of 2

    draining = refused(limit=2)

    assert draining.retry_after == 8
    assert draining.basis.startswith("the soonest of 2 operations holding a slot")


def test_release_frees_the_slot_for_the_next_claim():
    holds = [claim() for _ in range(3)]

    assert release(holds[1])
    again = claim()

    assert again.slot_number == holds[1].slot_number
    assert again.lease_version > holds[1].lease_version


def test_a_stale_holder_can_neither_renew_nor_release_a_slot_that_moved_on():
    stale = claim(limit=1)
    expire(stale)
    fresh = claim(limit=1)

    assert fresh.slot_number == stale.slot_number
    assert not renew(stale, 30)
    assert not release(stale)
    slot = Slot.objects.get(number=fresh.slot_number)
    assert (slot.operation_id, slot.lease_version) == (fresh.operation_id, fresh.lease_version)


def test_claiming_an_expired_slot_fails_its_running_operation():
    stale = claim(limit=1)
    Operation.objects.filter(pk=stale.operation_id).update(status=Status.RUNNING)
    expire(stale)

    claim(limit=1)

    orphan = Operation.objects.get(pk=stale.operation_id)
    assert orphan.status == Status.FAILED
    assert orphan.error.startswith("Worker lost: its slot lease expired at ")
    assert orphan.finished_at is not None


def test_claiming_an_expired_slot_fails_a_queued_operation_no_worker_started():
    stale = claim(limit=1)
    expire(stale)

    claim(limit=1)

    orphan = Operation.objects.get(pk=stale.operation_id)
    assert orphan.status == Status.FAILED
    assert orphan.error.startswith("No worker started it before its slot lease expired")


def test_renew_extends_the_lease_of_the_current_holder():
    hold = claim(lease_seconds=5)
    before = Slot.objects.get(number=hold.slot_number).lease_expires_at

    assert renew(hold, 60)

    after = Slot.objects.get(number=hold.slot_number).lease_expires_at
    assert after - before > timedelta(seconds=50)


def test_reclaim_frees_expired_slots_only():
    live, dead = claim(), claim()
    Operation.objects.filter(pk=dead.operation_id).update(status=Status.RUNNING)
    expire(dead)

    assert line.reclaim_expired() == 1

    assert Slot.objects.get(number=live.slot_number).operation_id == live.operation_id
    assert Slot.objects.get(number=dead.slot_number).operation_id is None
    assert Operation.objects.get(pk=dead.operation_id).status == Status.FAILED


def test_a_raised_limit_takes_effect_at_the_next_claim():
    [claim(limit=3) for _ in range(3)]

    hold = claim(limit=4)

    assert hold.slot_number == 4
    assert Slot.objects.count() == 4


def test_a_lowered_limit_never_evicts_running_work_nor_admits_past_it():
    holds = [claim(limit=5) for _ in range(5)]

    with pytest.raises(NoFreeSlot):
        claim(limit=2)
    for hold in holds[:3]:
        release(hold)  # slots 1-3 free; 4 and 5 still held above the new limit
    with pytest.raises(NoFreeSlot):
        claim(limit=2)

    release(holds[3])
    survivor = Slot.objects.get(number=5)
    assert survivor.operation_id == holds[4].operation_id
    assert claim(limit=2).slot_number == 1
    with pytest.raises(NoFreeSlot):
        claim(limit=2)


def test_ensure_slots_drops_free_rows_above_the_limit_and_keeps_held_ones():
    holds = [claim(limit=4) for _ in range(4)]
    release(holds[2])

    ensure_slots(2)

    assert list(Slot.objects.values_list("number", flat=True)) == [1, 2, 4]


@pytest.mark.django_db(transaction=True)
def test_two_claims_racing_while_a_lowered_limit_drains_never_exceed_it():
    ensure_slots(3)
    old = Operation.objects.create(kind="simulated", status=Status.RUNNING)
    later = timezone.now() + timedelta(minutes=10)
    Slot.objects.filter(number=3).update(operation=old, lease_version=1, lease_expires_at=later)
    outcomes: dict[str, object] = {}

    def claim(name: str, after: float, hold: float) -> None:
        time.sleep(after)
        operation = Operation(kind="simulated")
        try:
            with transaction.atomic():
                held = claim_slot(operation, limit=2, lease_seconds=600)
                operation.save(force_insert=True)
                time.sleep(hold)  # the other claim arrives while this one is uncommitted
            outcomes[name] = held.slot_number
        except NoFreeSlot:
            outcomes[name] = "refused"
        finally:
            connection.close()

    racers = [
        threading.Thread(target=claim, args=("first", 0, 1.0)),
        threading.Thread(target=claim, args=("second", 0.3, 0)),
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()

    assert sorted(map(str, outcomes.values())) == ["1", "refused"]
    assert count_live_holders(timezone.now()) == 2
