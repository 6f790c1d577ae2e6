from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from operations.admission import admit
from operations.feed import EVERYTHING, Change, ChangeFeed, postgres
from operations.feed.postgres import parse
from operations.models import Operation, Slot, Status
from operations.slots import Hold, claim_slot, ensure_slots, release, renew
from tests.operations.feed import Recorder

# PostgreSQL's triggers and LISTEN/NOTIFY: deselected on SQLite (tests/conftest.py).
on_postgresql = pytest.mark.postgresql

# Long enough for a notification sent at commit to arrive; nothing more is coming after it.
NOTIFIED_WITHIN = 0.5
# The listener publishes a notification, or reconnects after losing its connection, within this.
PUBLISHED_WITHIN = 5.0
# Changes of state are nudged "at once" (dashboard.consumers): the listener may add this much.
AS_IT_COMES = 0.25


def notifying(test):
    """Mark a test of the triggers or the listener: on PostgreSQL, with committed data."""
    return on_postgresql(pytest.mark.django_db(transaction=True)(test))


@pytest.fixture
def channel() -> Iterator[psycopg.Connection]:
    """A connection of the test's own that LISTENs on the feed's channel."""
    with postgres.connect() as listening:
        listening.execute(f"LISTEN {postgres.CHANNEL}")
        yield listening


def notifications(channel: psycopg.Connection) -> list[str]:
    """The payloads notified on `channel` since the last call, in order."""
    return [notify.payload for notify in channel.notifies(timeout=NOTIFIED_WITHIN)]


def new_operation(**fields: object) -> Operation:
    return Operation.objects.create(kind="simulated", **fields)


def held_slot() -> Hold:
    ensure_slots(1)
    return claim_slot(new_operation(), limit=1, lease_seconds=30)


@notifying
def test_a_new_operation_notifies_a_change_of_state(channel):
    operation = new_operation()

    assert notifications(channel) == [f"s:{operation.id}"]


@notifying
@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"status": Status.CANCELLED}, "s"),
        ({"cancel_requested": True}, "s"),
        ({"status": Status.COMPLETED, "progress": 100}, "s"),  # the state only, not both
        ({"progress": 50, "message": "x"}, "p"),
        ({"progress": 60}, "p"),
        ({"message": "half way"}, "p"),
    ],
    ids=["status", "cancel", "status-and-progress", "progress-and-message", "progress", "message"],
)
def test_an_update_notifies_a_change_of_state_else_of_progress(channel, fields, kind):
    operation = new_operation()
    notifications(channel)

    Operation.objects.filter(pk=operation.pk).update(**fields)

    assert notifications(channel) == [f"{kind}:{operation.id}"]


@notifying
def test_an_update_of_other_fields_notifies_nothing(channel):
    operation = new_operation()
    notifications(channel)

    Operation.objects.filter(pk=operation.pk).update(task_id=uuid.uuid4())
    Operation.objects.filter(pk=operation.pk).update(progress=0, message="")  # the same values

    assert notifications(channel) == []


@notifying
def test_a_deleted_operation_notifies_nothing(channel):
    operation = new_operation(status=Status.COMPLETED)
    notifications(channel)

    Operation.objects.filter(pk=operation.pk).delete()

    assert notifications(channel) == []


@notifying
def test_a_slot_changing_hands_notifies_slot(channel):
    hold = held_slot()
    claimed = notifications(channel)

    release(hold)

    assert claimed == [f"s:{hold.operation_id}", "slot"]
    assert notifications(channel) == ["slot"]


@notifying
def test_a_lease_renewal_notifies_nothing(channel):
    hold = held_slot()
    notifications(channel)

    assert renew(hold, lease_seconds=60)
    Slot.objects.filter(number=hold.slot_number).update(
        lease_expires_at=timezone.now() + timedelta(minutes=5)
    )

    assert notifications(channel) == []


@notifying
def test_an_admission_notifies_its_operation_and_its_slot_at_its_commit(channel):
    ensure_slots(1)
    notifications(channel)

    operation = admit("simulated", {"duration": 1})

    assert sorted(notifications(channel)) == sorted(["slot", f"s:{operation.id}"])


@notifying
def test_a_change_notifies_only_when_its_transaction_commits(channel):
    with transaction.atomic():
        operation = new_operation()
        uncommitted = notifications(channel)

    assert uncommitted == []
    assert notifications(channel) == [f"s:{operation.id}"]


@notifying
def test_a_rolled_back_transaction_notifies_nothing(channel):
    operation = new_operation()
    notifications(channel)

    with transaction.atomic():
        new_operation()
        Operation.objects.filter(pk=operation.pk).update(status=Status.RUNNING, progress=5)
        transaction.set_rollback(True)

    assert notifications(channel) == []


@dataclass
class Listener:
    feed: ChangeFeed
    changes: Recorder = field(default_factory=Recorder)
    backends: list[int] = field(default_factory=list)  # the pid of each connection it made
    ended: threading.Event = field(default_factory=threading.Event)

    def publishes(self, change: Change) -> bool:
        return self.changes.wait_for(change.__eq__, PUBLISHED_WITHIN) is not None


@pytest.fixture
def listener(monkeypatch) -> Iterator[Listener]:
    """`postgres.listen` as a feed's listener, seen to connect; stopped after."""
    connect = postgres.connect

    def connect_recording_backends() -> psycopg.Connection:
        made = connect()
        running.backends.append(made.info.backend_pid)
        return made

    def listen_until_stopped(feed: ChangeFeed) -> None:
        postgres.listen(feed)
        running.ended.set()

    monkeypatch.setattr(postgres, "connect", connect_recording_backends)
    running = Listener(ChangeFeed(listen_until_stopped))
    running.feed.subscribe(running.changes)
    assert running.publishes(EVERYTHING)
    yield running
    running.feed.stop()
    assert running.ended.is_set()


def listening_backends() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%%'")
        return {pid for (pid,) in cursor.fetchall()}


@notifying
def test_the_listener_publishes_everything_when_it_connects(listener):
    assert listener.changes.changes == [EVERYTHING]
    assert listener.feed.version == 1


@notifying
def test_the_listener_publishes_each_notification_as_its_change(listener):
    listener.changes.forget()
    ensure_slots(1)

    operation = new_operation()
    Operation.objects.filter(pk=operation.pk).update(progress=30)
    claim_slot(operation, limit=1, lease_seconds=30)

    assert listener.publishes(Change())
    assert listener.changes.changes == [
        Change(operation.id, state=True),
        Change(operation.id, state=False),
        Change(),
    ]


@notifying
def test_the_listener_publishes_a_notification_as_it_comes(listener):
    first = new_operation()
    assert listener.publishes(Change(first.id))  # the listener has just begun its next wait

    second = new_operation()

    assert listener.changes.wait_for(Change(second.id).__eq__, AS_IT_COMES) is not None


@notifying
def test_the_listener_recovers_after_its_connection_is_killed(listener):
    listener.changes.forget()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN%%' AND pid = %s",
            [listener.backends[0]],
        )
        assert cursor.fetchone() == (True,)
    # It may have missed changes while away: whoever waits must look again.
    assert listener.publishes(EVERYTHING)
    operation = new_operation()

    assert listener.publishes(Change(operation.id))
    assert len(listener.backends) == 2


@notifying
def test_a_stopped_listener_closes_its_connection(listener):
    assert listener.backends[0] in listening_backends()

    listener.feed.stop()

    assert listener.ended.is_set()
    deadline = time.monotonic() + PUBLISHED_WITHIN
    while listener.backends[0] in listening_backends() and time.monotonic() < deadline:
        time.sleep(0.05)  # the server ends the backend just after the client hangs up
    assert listener.backends[0] not in listening_backends()


def test_a_state_notification_parses_as_a_change_of_state():
    operation_id = uuid.uuid4()

    assert parse(f"s:{operation_id}") == Change(operation_id, state=True)


def test_a_progress_notification_parses_as_a_change_of_progress():
    operation_id = uuid.uuid4()

    assert parse(f"p:{operation_id}") == Change(operation_id, state=False)


def test_a_slot_notification_parses_as_a_change_naming_no_operation():
    assert parse("slot") == Change(None, state=True)


@pytest.mark.parametrize(
    "payload", ["", "s:", "p:not-a-uuid", "s", "slots", f"{uuid.uuid4()}", "s:1234"]
)
def test_a_junk_notification_is_ignored_with_a_warning(payload, caplog):
    assert parse(payload) is None
    assert caplog.messages == [f"Change feed ignored the notification {payload!r}."]


@pytest.mark.parametrize("kind", ["x", "S", "slot"])
def test_a_notification_of_an_unknown_kind_is_ignored(kind):
    assert parse(f"{kind}:{uuid.uuid4()}") is None
