from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from operations.feed import EVERYTHING, Change, ChangeFeed, wait_for_change
from operations.feed.hub import RECENT_CHANGES

OPERATION = uuid.uuid4()


def quiet(feed: ChangeFeed) -> None:
    """A listener that hears nothing: the tests publish themselves."""


def test_a_published_change_reaches_every_subscriber():
    feed = ChangeFeed(quiet)
    first, second = [], []
    feed.subscribe(first.append)
    feed.subscribe(second.append)
    change = Change(uuid.uuid4(), state=False)

    feed.publish([change])

    assert first == [change]
    assert second == [change]


def test_a_failing_subscriber_does_not_stop_the_others(caplog):
    feed = ChangeFeed(quiet)
    received = []

    def broken(change: Change) -> None:
        raise RuntimeError("this subscriber is broken")

    feed.subscribe(broken)
    feed.subscribe(received.append)
    changes = [Change(uuid.uuid4()), Change(uuid.uuid4())]

    feed.publish(changes)

    assert received == changes
    assert caplog.messages == ["A change feed subscriber failed."] * 2
    assert feed.subscribers == 2  # the broken one is still called next time


def test_an_unsubscribed_subscriber_hears_no_more_changes():
    feed = ChangeFeed(quiet)
    received = []
    feed.subscribe(received.append)
    feed.publish([Change(uuid.uuid4())])

    feed.unsubscribe(received.append)
    feed.publish([Change(uuid.uuid4())])

    assert len(received) == 1
    assert feed.subscribers == 0


def test_unsubscribing_what_never_subscribed_is_harmless():
    feed = ChangeFeed(quiet)

    feed.unsubscribe(print)

    assert feed.subscribers == 0


def test_the_version_goes_up_by_one_per_change_not_per_publish():
    feed = ChangeFeed(quiet)

    feed.publish([Change(uuid.uuid4()), Change()])
    after_two = feed.version
    feed.publish([])
    feed.publish([EVERYTHING])

    assert after_two == 2
    assert feed.version == 3
    assert feed.current_version() == 3


def test_subscribing_returns_the_version_as_of_the_subscription():
    feed = ChangeFeed(quiet)
    feed.publish([Change(uuid.uuid4())] * 3)

    assert feed.subscribe(lambda change: None) == 3


def test_the_listener_starts_at_the_first_subscription_and_only_once():
    started: list[ChangeFeed] = []
    listening = threading.Event()

    def listen(feed: ChangeFeed) -> None:
        started.append(feed)
        listening.set()

    feed = ChangeFeed(listen)
    feed.publish([Change()])
    before = list(started)

    feed.subscribe(lambda change: None)
    feed.subscribe(lambda change: None)
    feed.current_version()
    assert listening.wait(2)
    time.sleep(0.1)  # time for a second listener to show itself, were one started

    assert before == []
    assert started == [feed]


def test_stopping_a_feed_ends_its_listener():
    ended = threading.Event()

    def listen(feed: ChangeFeed) -> None:
        feed.stopping.wait()
        ended.set()

    feed = ChangeFeed(listen)
    feed.subscribe(lambda change: None)

    feed.stop()

    assert ended.is_set()


def test_stopping_a_feed_that_never_listened_is_harmless():
    feed = ChangeFeed(quiet)

    feed.stop()

    assert feed.stopping.is_set()


def test_a_change_concerns_its_own_operation_only():
    mine, other = uuid.uuid4(), uuid.uuid4()

    assert Change(mine).concerns(mine)
    assert Change(mine, state=False).concerns(mine)
    assert not Change(other).concerns(mine)


def test_a_change_of_progress_does_not_concern_who_asks_for_state_only():
    operation_id = uuid.uuid4()

    assert Change(operation_id).concerns(operation_id, progress=False)
    assert not Change(operation_id, state=False).concerns(operation_id, progress=False)


def test_everything_concerns_every_operation_and_a_slot_change_none():
    operation_id = uuid.uuid4()

    assert EVERYTHING.concerns(operation_id)
    assert EVERYTHING.concerns(operation_id, progress=False)
    assert not Change().concerns(operation_id)  # a slot changed hands: no operation named


async def wait_while_publishing(
    feed: ChangeFeed,
    operation_id: uuid.UUID,
    changes: list[Change],
    timeout: float,
    *,
    progress: bool = True,
) -> tuple[bool, float]:
    """Wait for `operation_id`, publish `changes` from another thread once subscribed."""
    start = time.monotonic()
    waiting = asyncio.ensure_future(
        wait_for_change(feed, operation_id, timeout, seen_version=feed.version, progress=progress)
    )
    while feed.subscribers == 0:
        await asyncio.sleep(0.001)
    await asyncio.to_thread(feed.publish, changes)
    changed = await waiting
    return changed, time.monotonic() - start


def test_waiting_ends_with_true_on_a_change_of_the_operation():
    feed = ChangeFeed(quiet)
    operation_id = uuid.uuid4()

    changed, took = asyncio.run(
        wait_while_publishing(feed, operation_id, [Change(operation_id, state=False)], timeout=5)
    )

    assert changed is True
    assert took < 1
    assert feed.subscribers == 0


def test_waiting_ends_with_true_on_everything():
    feed = ChangeFeed(quiet)

    changed, took = asyncio.run(wait_while_publishing(feed, uuid.uuid4(), [EVERYTHING], timeout=5))

    assert changed is True
    assert took < 1


def test_waiting_ends_with_false_after_its_timeout_when_only_others_change():
    feed = ChangeFeed(quiet)
    others = [Change(uuid.uuid4()), Change()]

    changed, took = asyncio.run(wait_while_publishing(feed, uuid.uuid4(), others, timeout=0.3))

    assert changed is False
    assert 0.3 <= took < 1.3
    assert feed.subscribers == 0


def test_waiting_ends_with_false_after_its_timeout_when_nothing_changes():
    feed = ChangeFeed(quiet)
    start = time.monotonic()

    changed = asyncio.run(
        wait_for_change(feed, uuid.uuid4(), 0.2, seen_version=feed.current_version())
    )

    assert changed is False
    assert 0.2 <= time.monotonic() - start < 1.2
    assert feed.subscribers == 0


def test_waiting_for_state_only_lets_progress_pass_but_ends_on_a_new_state():
    feed = ChangeFeed(quiet)
    operation_id = uuid.uuid4()
    progressed = [Change(operation_id, state=False)]

    after_progress, _ = asyncio.run(
        wait_while_publishing(feed, operation_id, progressed, 0.3, progress=False)
    )
    after_state, took = asyncio.run(
        wait_while_publishing(feed, operation_id, [Change(operation_id)], 5, progress=False)
    )

    assert after_progress is False
    assert after_state is True
    assert took < 1


def waits_after(feed: ChangeFeed, seen: int, operation_id: uuid.UUID, **options) -> tuple:
    """Whether a wait from `seen` ends with a change, and how long it took."""
    start = time.monotonic()
    changed = asyncio.run(wait_for_change(feed, operation_id, 0.3, seen_version=seen, **options))
    return changed, time.monotonic() - start


@pytest.mark.parametrize(
    "since",
    [Change(OPERATION), Change(OPERATION, state=False), EVERYTHING],
    ids=["state", "progress", "everything"],
)
def test_waiting_answers_true_at_once_for_a_change_published_since_the_version_seen(since):
    feed = ChangeFeed(quiet)
    seen = feed.current_version()
    feed.publish([Change(uuid.uuid4()), since, Change()])

    changed, took = waits_after(feed, seen, OPERATION)

    assert changed is True
    assert took < 0.2
    assert feed.subscribers == 0


def test_changes_of_others_since_the_version_seen_do_not_end_the_wait():
    feed = ChangeFeed(quiet)
    seen = feed.current_version()
    feed.publish([Change(uuid.uuid4()), Change(), Change(uuid.uuid4(), state=False)])

    assert waits_after(feed, seen, OPERATION)[0] is False


def test_progress_since_the_version_seen_does_not_end_a_wait_for_state():
    feed = ChangeFeed(quiet)
    seen = feed.current_version()
    feed.publish([Change(OPERATION, state=False)])

    assert waits_after(feed, seen, OPERATION, progress=False)[0] is False


def test_waiting_answers_true_at_once_when_the_version_seen_is_too_old_to_tell():
    feed = ChangeFeed(quiet)
    seen = feed.current_version()
    # Others' changes only, but more than the feed remembers: one of the operation's may be gone.
    feed.publish([Change(uuid.uuid4()) for _ in range(RECENT_CHANGES + 1)])

    changed, took = waits_after(feed, seen, OPERATION)

    assert changed is True
    assert took < 0.2
