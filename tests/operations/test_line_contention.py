"""Every share and cap holds at every instant: processes and threads racing through admission.

Two racer processes of four threads each (`python -m tests.operations.racer
race-caps`) start operations of three clients, of a kind capped at one at a time
("capped"), of a kind capped at one at a time per account ("keyed") and of the
uncapped `simulated`, on a pool of SLOTS slots of which a client may hold SHARE.
Each operation admitted holds its slot 5-20 ms and is released; the time it held
it is measured inside the true hold, so the most holds found overlapping at one
instant, per client, kind and key, can only understate what really held slots
at once. As in test_contention.py, the racers use a fresh database of the kind
under test (a SQLite file, or a new PostgreSQL database).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from pathlib import Path

import pytest

from tests.operations.racer import (
    CAPS_ACCOUNTS,
    CAPS_CLIENTS,
    CapsTally,
    Tables,
    fresh_database,
    most_at_once,
    race_processes,
)

# Selects these tests for the PostgreSQL pass; the racing itself uses a fresh database.
pytestmark = pytest.mark.django_db

SLOTS = 4
SHARE = 2  # with three clients, the pool fills before every client holds its share
WAITING_PER_CLIENT = 1
PROCESSES = 2
THREADS = 4
ROUNDS = 50  # per thread: 400 rounds in all


def race_caps(database_url: str, *, wait_share: float) -> CapsTally:
    """Run the racers on `database_url`; merge what they saw."""
    arguments = [
        "race-caps",
        f"--rounds={ROUNDS}",
        f"--threads={THREADS}",
        f"--wait-share={wait_share}",
    ]
    outputs = race_processes(
        database_url,
        arguments,
        processes=PROCESSES,
        MAX_CONCURRENT_OPERATIONS=str(SLOTS),
        MAX_SLOTS_PER_CLIENT=str(SHARE),
        MAX_WAITING_PER_CLIENT=str(WAITING_PER_CLIENT),
    )
    tally = CapsTally()
    for output in outputs:
        tally = tally.merge(CapsTally.from_json(output))
    return tally


def peaks[K: Hashable](stretches: Iterable[tuple[K, int, int]]) -> dict[K, int]:
    """The most of each group's [start, end) stretches that overlap at any one instant."""
    grouped: dict[K, list[tuple[int, int]]] = defaultdict(list)
    for group, start, end in stretches:
        grouped[group].append((start, end))
    return {group: most_at_once(intervals) for group, intervals in grouped.items()}


def left_behind(database_url: str) -> tuple[int, int]:
    """How many slots are still held, and how many operations still wait, after the race."""
    tables = Tables(database_url)
    try:
        [(waiting,)] = tables.rows(
            "SELECT count(*) FROM operations_operation WHERE status = %s", "waiting"
        )
        return len(tables.held()), waiting
    finally:
        tables.close()


def assert_every_cap_held(tally: CapsTally) -> None:
    """No instant saw more holders than a share or cap allows; each cap turned starts away."""
    holds = tally.holds
    assert tally.failed_releases == 0
    by_kind = peaks((held.kind, held.start, held.end) for held in holds)
    assert by_kind["capped"] == 1
    by_account = peaks((held.key, held.start, held.end) for held in holds if held.kind == "keyed")
    assert set(by_account) == set(CAPS_ACCOUNTS)
    assert max(by_account.values()) <= 1
    by_client = peaks((held.client, held.start, held.end) for held in holds)
    assert set(by_client) == set(CAPS_CLIENTS)
    assert max(by_client.values()) <= SHARE
    # More than one at once, or the bounds above would prove nothing.
    assert 1 < most_at_once((held.start, held.end) for held in holds) <= SLOTS
    # Each cap was put to the test: a full pool, a client at its share, each kind at its cap.
    assert {"concurrency_limit", "client_share", "kind_limit", "key_limit"} <= set(tally.refused)


def test_shares_and_caps_hold_at_every_instant_when_busy_starts_are_refused(tmp_path: Path):
    with fresh_database(tmp_path) as database_url:
        tally = race_caps(database_url, wait_share=0)
        held, waiting = left_behind(database_url)

    assert len(tally.holds) + tally.refused.total() == PROCESSES * THREADS * ROUNDS
    assert tally.handed_over == tally.stranded == 0
    assert_every_cap_held(tally)
    assert (held, waiting) == (0, 0)


def test_shares_and_caps_hold_at_every_instant_while_freed_slots_go_to_the_line(tmp_path: Path):
    # Half the starts wait when busy: a release hands its slot to the next eligible one.
    with fresh_database(tmp_path) as database_url:
        tally = race_caps(database_url, wait_share=0.5)
        held, waiting = left_behind(database_url)

    assert tally.stranded == 0, "an operation was left waiting in line: no release handed it a slot"
    assert tally.handed_over > 0, "no start waited for a slot: the racers never contended"
    assert len(tally.holds) + tally.refused.total() == PROCESSES * THREADS * ROUNDS
    assert_every_cap_held(tally)
    # A client may wait with WAITING_PER_CLIENT operations at most; one more is refused.
    assert tally.refused["queue_full"] > 0
    waiting_by_client = peaks(tally.waits)
    assert max(waiting_by_client.values()) <= WAITING_PER_CLIENT
    assert most_at_once((start, end) for _, start, end in tally.waits) > 1
    assert (held, waiting) == (0, 0)
