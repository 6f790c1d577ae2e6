"""PostgreSQL's side of the change feed: LISTEN on the channel the triggers NOTIFY.

The triggers (migration 0004) send a notification in the transaction of every
change, so it is delivered when, and only if, the change commits, whichever
process made it: web processes, workers, the admin. One connection per web
process listens, whatever the number of waiters; idle, it runs no query.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

import psycopg
from django.db import connections

from operations.feed.hub import EVERYTHING, Change

if TYPE_CHECKING:
    from operations.feed.hub import ChangeFeed

logger = logging.getLogger(__name__)

CHANNEL = "coordhub_changes"
RECONNECT_SECONDS = (0.5, 1, 2, 5)
# TCP keepalives notice a connection that died silently, without a query: idle, the
# listener sends nothing to the database.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def listen(feed: ChangeFeed) -> None:
    """Listen for ever, reconnecting after an outage; each (re)connection may have missed some."""
    failures = 0
    while not feed.stopping.is_set():
        try:
            with connect() as connection:
                connection.execute(f"LISTEN {CHANNEL}")
                failures = 0
                feed.publish([EVERYTHING])
                receive(connection, feed)
        except psycopg.Error as exc:
            logger.warning("Change feed lost PostgreSQL (%s); retrying.", exc)
        except Exception:  # the feed must outlive any surprise: its waiters depend on it
            logger.exception("Change feed failed; retrying.")
        feed.stopping.wait(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])
        failures += 1


def connect() -> psycopg.Connection:
    """A connection of its own, outside Django's pool, with the default database's settings."""
    params = connections["default"].get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return psycopg.connect(autocommit=True, connect_timeout=5, **KEEPALIVES, **params)


def receive(connection: psycopg.Connection, feed: ChangeFeed) -> None:
    """Publish notifications as they come; raise when the connection is gone."""
    while not feed.stopping.is_set():
        # Each as it comes: the iterator itself ends only once its second is up.
        for notify in connection.notifies(timeout=1.0):
            change = parse(notify.payload)
            if change is not None:
                feed.publish([change])
        if connection.broken or connection.closed:
            raise psycopg.OperationalError("the listening connection closed")


def parse(payload: str) -> Change | None:
    """`s:<id>` state, `p:<id>` progress, `slot` a slot changed hands."""
    if payload == "slot":
        return Change()
    kind, _, operation_id = payload.partition(":")
    try:
        if kind in ("s", "p"):
            return Change(uuid.UUID(operation_id), state=kind == "s")
    except ValueError:
        pass
    logger.warning("Change feed ignored the notification %r.", payload)
    return None
