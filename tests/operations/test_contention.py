"""Never more slot holders than slots, at any instant: threads and processes racing to claim.

The racers run in subprocesses against a fresh database of the kind under test
(a SQLite file, or a new PostgreSQL database): pytest-django's SQLite test
database lives in a shared-cache memory database, whose table locks fail at once
("database table is locked") instead of waiting, which is not how coordhub's
file database behaves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.operations.racer import (
    Tables,
    Tally,
    fresh_database,
    merge,
    most_at_once,
    race_processes,
)

# Selects these tests for the PostgreSQL pass; the racing itself uses a fresh database.
pytestmark = pytest.mark.django_db

LIMIT = 3


def race(database_url: str, *, processes: int, threads: int, rounds: int) -> Tally:
    """Start racer processes, let them go at once, and merge what they saw."""
    options = [f"--rounds={rounds}", f"--threads={threads}", f"--limit={LIMIT}"]
    outputs = race_processes(database_url, ["race", *options], processes=processes)
    return merge([Tally(**json.loads(output)) for output in outputs])


def held_slots(database_url: str) -> list:
    tables = Tables(database_url)
    try:
        return tables.held()
    finally:
        tables.close()


@pytest.mark.parametrize(
    ("processes", "threads", "rounds"),
    [pytest.param(1, 8, 30, id="8-threads"), pytest.param(4, 2, 30, id="4-processes-of-2-threads")],
)
def test_claim_never_exceeds_slot_count_under_contention(
    tmp_path: Path, processes: int, threads: int, rounds: int
):
    with fresh_database(tmp_path) as database_url:
        total = race(database_url, processes=processes, threads=threads, rounds=rounds)
        held = held_slots(database_url)

    assert len(total.intervals) + total.rejected == processes * threads * rounds
    assert total.intervals, "no claim succeeded"
    assert total.rejected, "no claim was refused: the racers never contended"
    assert total.failed_releases == 0
    assert most_at_once(total.intervals) <= LIMIT
    assert held == []
