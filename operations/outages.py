"""Riding out a short database outage in a worker: log it, drop the broken connection."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, close_old_connections

logger = logging.getLogger(__name__)


@contextmanager
def database_outage_tolerated(what: str) -> Iterator[None]:
    """Let a database error pass (logged), dropping the broken connection."""
    try:
        yield
    except DatabaseError as exc:
        logger.warning("Database unavailable for %s: %s", what, exc)
        close_old_connections()
