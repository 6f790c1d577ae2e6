"""The change feed's hub: changes, their subscribers, and waiting for one.

See the package's docstring for the whole feed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

Subscriber = Callable[["Change"], None]
RECENT_CHANGES = 4096


@dataclass(frozen=True)
class Change:
    """Something committed: an operation's state or progress, a slot, or perhaps anything."""

    operation_id: uuid.UUID | None = None  # None: a slot changed hands
    state: bool = True  # False: progress or message only
    # The listener (re)connected: changes may have been missed, so everyone looks again.
    everything: bool = False

    def concerns(self, operation_id: uuid.UUID, *, progress: bool = True) -> bool:
        """Whether this may change what `operation_id` shows (with `progress`: its progress too)."""
        if self.everything:
            return True
        return self.operation_id == operation_id and (self.state or progress)


EVERYTHING = Change(everything=True)


class ChangeFeed:
    """Subscribers of one process and the listener thread that feeds them."""

    def __init__(self, listen: Callable[[ChangeFeed], None]) -> None:
        self._listen = listen
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._thread: threading.Thread | None = None
        # The last changes with their versions: whether one that concerns a waiter came
        # between its read of the database and its subscription.
        self._recent: deque[tuple[int, Change]] = deque(maxlen=RECENT_CHANGES)
        self.stopping = threading.Event()
        self.version = 0

    def start(self) -> None:
        """Start listening, once per process (lazily: a process that never waits never listens)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._listen, args=(self,), name="coordhub-change-feed", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the listener's connection (tests; a process just exits)."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def subscribe(self, subscriber: Subscriber) -> int:
        """Call `subscriber(change)` from the listener thread for every change; return the version.

        The version is the feed's as of the subscription: a caller that read the
        database at an older version may have missed a change in between.
        """
        self.start()
        with self._lock:
            self._subscribers.add(subscriber)
            return self.version

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def changed_since(self, version: int, concerns: Callable[[Change], bool]) -> bool:
        """Whether a change after `version` concerns the caller (True if too old to tell)."""
        with self._lock:
            if version >= self.version:
                return False
            if not self._recent or self._recent[0][0] > version + 1:
                return True
            return any(concerns(change) for number, change in self._recent if number > version)

    def current_version(self) -> int:
        """The version to compare a later subscription with (starts the feed)."""
        self.start()
        with self._lock:
            return self.version

    def publish(self, changes: Iterable[Change]) -> None:
        """Hand `changes` to every subscriber; called by the listener."""
        for change in changes:
            with self._lock:
                self.version += 1
                self._recent.append((self.version, change))
                subscribers = list(self._subscribers)
            for subscriber in subscribers:
                try:
                    subscriber(change)
                except Exception:  # one broken subscriber must not starve the others
                    logger.exception("A change feed subscriber failed.")

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)


async def wait_for_change(
    feed: ChangeFeed,
    operation_id: uuid.UUID,
    timeout: float,
    *,
    seen_version: int,
    progress: bool = True,
) -> bool:
    """Wait until `operation_id` changes; say whether it did within `timeout` seconds.

    `seen_version` is the feed's version when the caller last read the operation:
    a change of it published since then answers at once. Without `progress`, only
    changes of state count (waiting for an operation to end).
    """
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def concerns(change: Change) -> bool:
        return change.concerns(operation_id, progress=progress)

    def notice(change: Change) -> None:
        if concerns(change):
            loop.call_soon_threadsafe(changed.set)

    feed.subscribe(notice)
    if feed.changed_since(seen_version, concerns):
        changed.set()
    try:
        async with asyncio.timeout(max(0.0, timeout)):
            await changed.wait()
        return True
    except TimeoutError:
        return False
    finally:
        feed.unsubscribe(notice)
