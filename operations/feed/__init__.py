"""The change feed: one per process, telling whoever waits what changed in operations and slots.

A listener thread (`postgres.listen` on PostgreSQL's LISTEN/NOTIFY, `sqlite.detect`
on SQLite's `data_version`) reports changes committed by any process; the feed
fans them out in process to its subscribers, however many there are: browser
sockets (`dashboard.consumers`) and held API calls (`coordhub.holding`). A change
names an operation and whether its state changed (appeared, new status, cancel
asked, slot handed over) or only its progress. It carries no data: whoever is
nudged reads what it may see through the usual views.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connections

from operations.feed.hub import EVERYTHING, Change, ChangeFeed, wait_for_change

__all__ = [
    "EVERYTHING",
    "Change",
    "ChangeFeed",
    "process_feed",
    "stop_process_feed",
    "wait_for_change",
]

_feed: ChangeFeed | None = None
_feed_lock = threading.Lock()


def process_feed() -> ChangeFeed:
    """This process's feed, listening on the default database's kind of change signal."""
    global _feed
    with _feed_lock:
        if _feed is None:
            _feed = ChangeFeed(listener_for(connections["default"].vendor))
        return _feed


def stop_process_feed() -> None:
    """Stop this process's feed, if it started, closing its connection (at the end of tests)."""
    global _feed
    with _feed_lock:
        feed, _feed = _feed, None
    if feed is not None:
        feed.stop()


def listener_for(vendor: str) -> Callable[[ChangeFeed], None]:
    if vendor == "postgresql":
        from operations.feed.postgres import listen

        return listen
    from operations.feed.sqlite import detect

    return detect
