from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.utils import timezone

from operations.admission import admit
from operations.feed import Change, ChangeFeed, sqlite
from operations.feed.sqlite import differences
from operations.models import Counter, Operation, Slot, Status
from operations.slots import claim_slot, ensure_slots, release
from tests.operations.feed import Recorder

# Watches SQLite's PRAGMA data_version: deselected on PostgreSQL (tests/conftest.py).
on_sqlite = pytest.mark.sqlite

# The detector looks every CHECK_SECONDS: a committed change shows well within this.
SHOWS_WITHIN = 2.0
# Several of the detector's looks.
QUIET_SECONDS = 4 * sqlite.CHECK_SECONDS
# After an error it waits a second before it looks again.
STARTS_OVER_WITHIN = 5.0


@dataclass
class Detector:
    feed: ChangeFeed
    changes: Recorder = field(default_factory=Recorder)
    statements: list[str] = field(default_factory=list)  # every SQL its connection ran
    closed: threading.Event = field(default_factory=threading.Event)  # it ended, disconnected

    def shows(self, operation_id: uuid.UUID | None, *, state: bool) -> bool:
        """Whether the change shows within SHOWS_WITHIN, published as a change of `state`."""
        change = self.changes.wait_for(
            lambda change: change.operation_id == operation_id, SHOWS_WITHIN
        )
        return change == Change(operation_id, state=state)

    def starts_over(self) -> bool:
        """Whether it (re)takes a first look, publishing EVERYTHING, within STARTS_OVER_WITHIN."""
        everything = self.changes.wait_for(lambda change: change.everything, STARTS_OVER_WITHIN)
        return everything is not None


@pytest.fixture
def detector() -> Iterator[Detector]:
    """`sqlite.detect` as a feed's listener, seen to take its first look; stopped after."""

    def detect_recording_statements(feed: ChangeFeed) -> None:
        own = connections[DEFAULT_DB_ALIAS]  # this thread's connection

        def record(execute, sql, params, many, context):
            running.statements.append(sql)
            return execute(sql, params, many, context)

        with own.execute_wrapper(record):
            sqlite.detect(feed)
        if own.connection is None:
            running.closed.set()

    running = Detector(ChangeFeed(detect_recording_statements))
    running.feed.subscribe(running.changes)
    # Its first look publishes EVERYTHING: from then on every commit is compared with it.
    assert running.starts_over()
    running.changes.forget()
    yield running
    running.feed.stop()
    assert running.closed.is_set()


def running_operation(**fields: object) -> Operation:
    return Operation.objects.create(kind="simulated", status=Status.RUNNING, **fields)


def seen_running(detector: Detector, **fields: object) -> Operation:
    """A running operation the detector has seen appear; the changes kept so far forgotten."""
    operation = running_operation(**fields)
    assert detector.shows(operation.id, state=True)
    detector.changes.forget()
    return operation


def detecting(test):
    """Mark a test of the detector: on SQLite only, with committed data it can see."""
    return on_sqlite(pytest.mark.django_db(transaction=True)(test))


@detecting
def test_an_admitted_operation_shows_as_a_change_of_state_and_of_a_slot(detector):
    ensure_slots(2)

    operation = admit("simulated", {"duration": 1})

    assert detector.shows(operation.id, state=True)
    assert detector.shows(None, state=True)  # its slot changed hands in the same commit


@detecting
def test_a_progress_update_shows_as_a_change_of_progress_only(detector):
    operation = seen_running(detector)

    Operation.objects.filter(pk=operation.pk).update(progress=50, message="x")

    assert detector.shows(operation.id, state=False)


@detecting
def test_the_end_of_an_operation_shows_as_a_change_of_state(detector):
    operation = seen_running(detector, progress=90)

    Operation.objects.filter(pk=operation.pk).finish(Status.COMPLETED, progress=100)

    assert detector.shows(operation.id, state=True)


@detecting
def test_a_cancel_request_shows_as_a_change_of_state(detector):
    operation = seen_running(detector)

    Operation.objects.filter(pk=operation.pk).update(cancel_requested=True)

    assert detector.shows(operation.id, state=True)


@detecting
def test_an_old_operation_that_ends_without_an_end_time_still_shows(detector):
    # Created long before the detector's window: only its being active keeps it in sight.
    operation = seen_running(detector, created_at=timezone.now() - timedelta(hours=1))

    Operation.objects.filter(pk=operation.pk).update(status=Status.FAILED)

    assert detector.shows(operation.id, state=True)


@detecting
def test_an_active_operation_deleted_shows_as_a_change_of_state(detector):
    operation = seen_running(detector)

    Operation.objects.filter(pk=operation.pk).delete()

    assert detector.shows(operation.id, state=True)


@detecting
def test_a_slot_handed_over_shows_as_a_slot_change(detector):
    ensure_slots(1)
    first = running_operation()
    hold = claim_slot(first, limit=1, lease_seconds=30)
    assert detector.shows(None, state=True)
    detector.changes.forget()

    release(hold)
    assert detector.shows(None, state=True)
    detector.changes.forget()
    claim_slot(running_operation(), limit=1, lease_seconds=30)

    assert detector.shows(None, state=True)


@detecting
def test_after_a_database_error_the_detector_starts_over_and_publishes_everything(
    detector, monkeypatch, caplog
):
    holders = sqlite.slot_holders

    def slot_holders_failing_once() -> dict:
        monkeypatch.setattr(sqlite, "slot_holders", holders)
        raise DatabaseError("database is locked")

    monkeypatch.setattr(sqlite, "slot_holders", slot_holders_failing_once)
    running_operation()  # a commit: the detector looks, and fails

    assert detector.starts_over()
    assert "Change feed lost the database (database is locked); retrying." in caplog.messages


@detecting
def test_a_lease_renewal_is_no_change(detector):
    ensure_slots(1)
    claim_slot(running_operation(), limit=1, lease_seconds=30)
    assert detector.shows(None, state=True)
    detector.changes.forget()

    Slot.objects.filter(number=1).update(lease_expires_at=timezone.now() + timedelta(minutes=5))

    assert detector.changes.wait_for(lambda change: True, QUIET_SECONDS) is None


@detecting
def test_a_change_shows_only_once_its_transaction_commits(detector):
    operation = seen_running(detector)

    with transaction.atomic():
        Operation.objects.filter(pk=operation.pk).update(progress=10)
        uncommitted = detector.changes.wait_for(lambda change: True, QUIET_SECONDS)

    assert uncommitted is None
    assert detector.shows(operation.id, state=False)


@detecting
def test_a_rolled_back_change_shows_nothing_and_costs_only_data_version_queries(detector):
    operation = seen_running(detector)
    detector.statements.clear()

    with transaction.atomic():
        Operation.objects.filter(pk=operation.pk).update(status=Status.CANCELLED)
        transaction.set_rollback(True)
    quiet = detector.changes.wait_for(lambda change: True, QUIET_SECONDS)

    assert quiet is None
    assert len(detector.statements) >= 3  # it kept looking all along
    assert set(detector.statements) == {"PRAGMA data_version"}


@detecting
def test_with_nothing_committed_the_detector_asks_only_data_version(detector):
    detector.statements.clear()

    quiet = detector.changes.wait_for(lambda change: True, QUIET_SECONDS)

    assert quiet is None
    assert len(detector.statements) >= 3
    assert set(detector.statements) == {"PRAGMA data_version"}


@detecting
def test_a_commit_that_touches_no_operation_or_slot_publishes_nothing(detector):
    active = running_operation(progress=5)
    finished = Operation.objects.create(kind="simulated", status=Status.COMPLETED)
    assert detector.shows(active.id, state=True)
    assert detector.shows(finished.id, state=True)
    detector.changes.forget()
    detector.statements.clear()

    Counter.objects.create(name="unrelated", value=1)
    quiet = detector.changes.wait_for(lambda change: True, QUIET_SECONDS)

    assert quiet is None
    assert any("operations_operation" in sql for sql in detector.statements)  # it looked


# differences(before, after): each operation as (status, cancel_requested, progress, message).
ID = uuid.uuid4()
QUEUED = (Status.QUEUED, False, 0, "")


def test_an_operation_that_appears_is_a_change_of_state():
    assert list(differences({}, {ID: QUEUED})) == [Change(ID, state=True)]


def test_a_new_status_or_a_cancel_request_is_a_change_of_state():
    running = (Status.RUNNING, False, 0, "")
    cancelling = (Status.QUEUED, True, 0, "")

    assert list(differences({ID: QUEUED}, {ID: running})) == [Change(ID, state=True)]
    assert list(differences({ID: QUEUED}, {ID: cancelling})) == [Change(ID, state=True)]


def test_new_progress_or_message_alone_is_a_change_of_progress():
    progressed = (Status.QUEUED, False, 40, "")
    told = (Status.QUEUED, False, 0, "half way")

    assert list(differences({ID: QUEUED}, {ID: progressed})) == [Change(ID, state=False)]
    assert list(differences({ID: QUEUED}, {ID: told})) == [Change(ID, state=False)]


def test_an_unchanged_operation_is_no_change():
    assert list(differences({ID: QUEUED}, {ID: QUEUED})) == []


def test_an_active_operation_that_leaves_the_window_is_a_change_of_state():
    assert list(differences({ID: QUEUED}, {})) == [Change(ID, state=True)]


def test_a_finished_operation_that_leaves_the_window_is_no_change():
    assert list(differences({ID: (Status.COMPLETED, False, 100, "")}, {})) == []


def test_each_operation_changed_is_a_change_of_its_own():
    other = uuid.uuid4()
    before = {ID: QUEUED, other: QUEUED}
    after = {ID: (Status.QUEUED, False, 1, ""), other: (Status.RUNNING, False, 0, "")}

    assert set(differences(before, after)) == {Change(ID, state=False), Change(other)}
