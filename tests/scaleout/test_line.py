"""The line across real processes: waiting starts, fair handover, shares, and faults.

Each test starts its own cluster (`tests/scaleout/cluster.py`: PostgreSQL, Redis,
two daphne processes, two `coordhub_worker` processes), configured for what it
checks; a cluster starts in a few seconds, and the configurations differ (a
client's share, the lease) or the test breaks the cluster (a worker killed, the
database restarted), so none is shared. Distinct clients are distinct addresses:
the web processes believe the X-Forwarded-For of their trusted proxy, loopback.

What a user would check is read where the user reads it (the 202, GET
/api/operations/<id>); what only the database can tell (when a waiting operation
got its slot, how many times a task was taken) is read from the rows.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.scaleout.cluster import FINISHED, Answer, Cluster, send, wait_for

pytestmark = pytest.mark.scaleout

UNLIMITED = "100000"
PROXY = "127.0.0.1/32"  # every request comes from loopback: X-Forwarded-For names the client
CLIENT_A, CLIENT_B = "203.0.113.10", "203.0.113.20"
WORKER_LOST = "Worker lost"
# Short, as in test_cluster.py: a dead worker's slots come back within seconds.
LEASE_SECONDS = 3
SWEEP_SECONDS = 1
# Slack for scheduling on a busy two-core machine, beyond the lease and one sweep.
MARGIN_SECONDS = 8


def client(address: str) -> httpx.Client:
    """An HTTP client the web processes take for `address` (keyed `ip:<address>`)."""
    return httpx.Client(headers={"X-Forwarded-For": address})


def start(http: httpx.Client, url: str, duration: float, when_busy: str = "wait") -> Answer:
    body = {"kind": "simulated", "params": {"duration": duration}, "when_busy": when_busy}
    return send(http, "POST", f"{url}/api/operations", json=body)


def shown(http: httpx.Client, url: str, operation_id: str) -> dict[str, Any]:
    answer = send(http, "GET", f"{url}/api/operations/{operation_id}")
    assert answer.status == 200, answer
    return answer.body


def rows(cluster: Cluster, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The operations' rows by id: client, status, times, recorded wait, error."""
    found = cluster.rows(
        "SELECT id::text, client_key, status, created_at, started_at, finished_at,"
        " waited_seconds, error FROM operations_operation WHERE id::text = ANY(%s)",
        list(ids),
    )
    fields = ("client_key", "status", "created_at", "started_at", "finished_at", "waited", "error")
    return {row[0]: dict(zip(fields, row[1:], strict=True)) for row in found}


def settled(cluster: Cluster, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Wait until every one of `ids` has ended (one query a round); return their rows."""

    def ended() -> dict[str, dict[str, Any]] | None:
        found = rows(cluster, ids)
        done = len(found) == len(ids) and all(r["status"] in FINISHED for r in found.values())
        return found if done else None

    return wait_for(ended, f"ending all {len(ids)} operations", timeout, cluster)


def promoted_at(row: dict[str, Any]) -> datetime:
    """When a waiting operation was given its slot: the line records the wait at that moment."""
    return row["created_at"] + timedelta(seconds=row["waited"])


def most_running_at_once(found: Iterable[dict[str, Any]]) -> int:
    """The most [started_at, finished_at) intervals covering one instant (an end first on ties)."""
    events = sorted(
        (moment, step)
        for row in found
        if row["started_at"] is not None
        for moment, step in ((row["started_at"], 1), (row["finished_at"], -1))
    )
    peak = covering = 0
    for _, step in events:
        covering += step
        peak = max(peak, covering)
    return peak


def runs(cluster: Cluster, ids: list[str]) -> dict[str, list[tuple[list[str], Any]]]:
    """Each operation's task rows: (the worker loops that took it, what it returned).

    Every slot claim, at admission or handover, enqueues exactly one task carrying
    the claim's lease version, and django-tasks-db appends each loop that takes a
    task to its `worker_ids`. One row taken by one loop is one claim run once; a
    second claim or a second take shows here whatever became of it.
    """
    found: dict[str, list[tuple[list[str], Any]]] = {operation_id: [] for operation_id in ids}
    for operation_id, worker_ids, returned in cluster.rows(
        "SELECT args_kwargs -> 'args' ->> 0, worker_ids, return_value"
        " FROM django_tasks_database_dbtaskresult WHERE args_kwargs -> 'args' ->> 0 = ANY(%s)",
        ids,
    ):
        found[operation_id].append((worker_ids, returned))
    return found


def allocations(cluster: Cluster) -> int:
    """Slot claims counted so far (each claim counts once, in its own transaction)."""
    found = cluster.rows("SELECT value FROM operations_counter WHERE name = 'allocations'")
    return found[0][0] if found else 0


def assert_each_ran_once(cluster: Cluster, ids: list[str], completed: list[str]) -> None:
    """One claim per operation, taken by one loop; the completed ones ran to the end once."""
    taken = runs(cluster, ids)
    assert {i: len(t) for i, t in taken.items() if len(t) != 1} == {}, taken
    assert {i: t for i, t in taken.items() if len(t[0][0]) != 1} == {}, taken
    assert {i: taken[i][0][1] for i in completed if taken[i][0][1] != "completed"} == {}
    assert allocations(cluster) == len(ids)  # the cluster is fresh: every claim was one of these


# --- 1. Fairness: a client behind another's twenty is served at the next free slot ---------

SLOTS = 2
A_OPERATIONS = 20
OPERATION_SECONDS = 1.0
# B joins behind A's 18 waiting operations. Served in arrival order it would wait about
# 18 / 2 slots x 1 s = 9 s. Served fairly it takes the next slot that frees: the one whose
# holder started longest ago frees within one hold (a worker's pick-up, polled every 0.2 s,
# plus the 1 s run), then B's own task is picked up and started. About 1.5 s on a quiet
# machine; 3 s leaves room for four Django processes and PostgreSQL on two cores and is still
# a third of what an unfair line would make B wait.
B_STARTS_WITHIN_SECONDS = 3.0


def test_a_second_client_is_served_at_the_next_free_slot_not_behind_the_first(
    start_cluster, figures
):
    cluster = start_cluster(
        MAX_CONCURRENT_OPERATIONS=str(SLOTS),
        REQUESTS_PER_MINUTE=UNLIMITED,
        TRUSTED_PROXIES=PROXY,
        worker_threads=2,  # four task loops for two slots: a worker is always free
    )
    urls = cluster.urls
    with client(CLIENT_A) as a, client(CLIENT_B) as b:
        a_starts = [start(a, urls[n % 2], OPERATION_SECONDS) for n in range(A_OPERATIONS)]
        b_start = start(b, urls[1], OPERATION_SECONDS)
        answers = [*a_starts, b_start]
        assert [x.status for x in answers] == [202] * len(answers), answers
        a_ids = [x.body["id"] for x in a_starts]
        b_id = b_start.body["id"]
        ids = [*a_ids, b_id]

        # Two of A's took the two slots; the rest of A's, then B's, joined the line, and B's
        # is next: its client has not been served yet, A's just was.
        assert [x.body["status"] for x in a_starts[:2]] == ["queued"] * 2, a_starts[:2]
        assert [x.body["status"] for x in a_starts[2:]] == ["waiting"] * 18, a_starts
        assert b_start.body["status"] == "waiting", b_start.body
        assert b_start.body["line"]["position"] == 1, b_start.body["line"]
        assert b_start.body["line"]["waiting_because"] == "concurrency_limit"

        found = settled(cluster, ids, timeout=60)
        seen = {i: shown(a if i in a_ids else b, urls[0], i) for i in ids}

    assert {i: r["status"] for i, r in found.items() if r["status"] != "completed"} == {}
    assert {r["client_key"] for r in found.values()} == {f"ip:{CLIENT_A}", f"ip:{CLIENT_B}"}
    b_row = found[b_id]
    b_waited = (b_row["started_at"] - b_row["created_at"]).total_seconds()
    figures["B started after it was queued"] = f"{b_waited:.2f} s behind A's 18 waiting"
    assert b_waited <= B_STARTS_WITHIN_SECONDS, f"B started {b_waited:.2f} s after it was queued"
    # Whatever the timing, B took the first slot that freed after it joined: not one of A's
    # waiting operations was given a slot between B's joining and B's turn.
    b_turn = promoted_at(b_row)
    overtook = [
        i
        for i in a_ids
        if found[i]["waited"] is not None and b_row["created_at"] < promoted_at(found[i]) < b_turn
    ]
    assert overtook == []
    # A's own were served in the order A sent them.
    a_waiting = [i for i in a_ids if found[i]["waited"] is not None]
    assert sorted(a_waiting, key=lambda i: promoted_at(found[i])) == a_waiting
    assert most_running_at_once(found.values()) == SLOTS

    # Every operation that waited shows its wait, recorded when it got its slot; the two
    # that had one at once show none.
    waited = [x.body["id"] for x in answers if x.body["status"] == "waiting"]
    assert len(waited) == 19
    for operation_id in ids:
        line = seen[operation_id]["line"]
        if operation_id not in waited:
            assert line is None, seen[operation_id]
            continue
        assert set(line) == {"waited_seconds"}, seen[operation_id]
        row = found[operation_id]
        assert line["waited_seconds"] == pytest.approx(row["waited"], abs=0.001)
        assert row["created_at"] < promoted_at(row) <= row["started_at"]
    # A's last waited for the twenty before it (A's nineteen and B's), two at a time.
    assert seen[a_ids[-1]]["line"]["waited_seconds"] >= 8 * OPERATION_SECONDS


# --- 2. A client's share: the slot it may not take goes to another client at once ----------


def test_a_client_at_its_share_waits_while_another_client_takes_the_free_slot(start_cluster):
    cluster = start_cluster(
        MAX_CONCURRENT_OPERATIONS="2",
        MAX_SLOTS_PER_CLIENT="1",
        REQUESTS_PER_MINUTE=UNLIMITED,
        TRUSTED_PROXIES=PROXY,
        worker_threads=2,
    )
    urls = cluster.urls
    with client(CLIENT_A) as a, client(CLIENT_B) as b:
        first = start(a, urls[0], 60)
        second = start(a, urls[1], 60)
        assert (first.status, first.body["status"]) == (202, "queued"), first
        assert (second.status, second.body["status"]) == (202, "waiting"), second
        # One slot is free, yet A's second waits for A's own share.
        assert second.body["line"]["waiting_because"] == "client_share"
        assert second.body["line"]["position"] == 1

        other = start(b, urls[0], 60, when_busy="refuse")
        assert other.status == 202, other
        assert other.body["status"] in ("queued", "running"), other.body
        assert shown(a, urls[1], second.body["id"])["status"] == "waiting"
        both = [first.body["id"], other.body["id"]]
        wait_for(
            lambda: {r["status"] for r in rows(cluster, both).values()} == {"running"},
            "running one operation of each client",
            30,
            cluster,
        )
        assert shown(b, urls[1], second.body["id"])["status"] == "waiting"
        keys = {r["client_key"] for r in rows(cluster, both).values()}
        assert keys == {f"ip:{CLIENT_A}", f"ip:{CLIENT_B}"}

        # A's own slot freeing is what lets A's second run.
        cancel = send(a, "POST", f"{urls[0]}/api/operations/{first.body['id']}/cancel")
        assert cancel.status == 200, cancel
        wait_for(
            lambda: rows(cluster, [second.body["id"]])[second.body["id"]]["status"] == "running",
            "A's second operation running in the slot A's first left",
            15,
            cluster,
        )
        assert shown(a, urls[0], second.body["id"])["line"]["waited_seconds"] > 0
        assert rows(cluster, [other.body["id"]])[other.body["id"]]["status"] == "running"


# --- 3. Faults on PostgreSQL: the line survives a killed worker and a database restart ------

BLOCKER_SECONDS = 15  # longer than the kill, the lease and a sweep take, with MARGIN_SECONDS
WAITERS = 8
# Short: after the kill the survivor has one or two idle task loops for the two or three
# slots handed over, and an operation handed a slot must be started within its lease.
WAITER_SECONDS = 0.3


def test_a_killed_workers_slots_go_to_the_line_and_every_waiting_operation_completes(
    start_cluster, figures
):
    cluster = start_cluster(
        MAX_CONCURRENT_OPERATIONS="4",
        REQUESTS_PER_MINUTE=UNLIMITED,
        SLOT_LEASE_SECONDS=str(LEASE_SECONDS),
        CLEANUP_INTERVAL_SECONDS=str(SWEEP_SECONDS),
        # Three task loops each: four blockers run on both workers (at most three on one).
        worker_threads=3,
    )
    urls = cluster.urls
    with httpx.Client() as http:
        blockers = [start(http, urls[n % 2], BLOCKER_SECONDS) for n in range(4)]
        assert [(x.status, x.body["status"]) for x in blockers] == [(202, "queued")] * 4
        blocker_ids = [x.body["id"] for x in blockers]
        wait_for(
            lambda: {r["status"] for r in rows(cluster, blocker_ids).values()} == {"running"},
            "running all four",
            30,
            cluster,
        )
        waiters = [start(http, urls[n % 2], WAITER_SECONDS) for n in range(WAITERS)]
        assert [(x.status, x.body["status"]) for x in waiters] == [(202, "waiting")] * WAITERS
        waiter_ids = [x.body["id"] for x in waiters]

        # The task rows say which worker runs each; the one running more of them dies.
        runner = {i: t[0][0][-1] for i, t in runs(cluster, blocker_ids).items()}
        victim = max(
            cluster.workers,
            key=lambda w: sum(r.startswith(f"{w.name}-") for r in runner.values()),
        )
        (survivor,) = [w for w in cluster.workers if w is not victim]
        doomed = [i for i in blocker_ids if runner[i].startswith(f"{victim.name}-")]
        spared = [i for i in blocker_ids if i not in doomed]
        assert (len(doomed), len(spared)) in {(2, 2), (3, 1)}, runner

        victim.kill()
        killed_at = time.monotonic()
        wait_for(
            lambda: {r["status"] for r in rows(cluster, doomed).values()} == {"failed"},
            "failing the killed worker's operations",
            LEASE_SECONDS + SWEEP_SECONDS + MARGIN_SECONDS,
            cluster,
        )
        reclaim_seconds = time.monotonic() - killed_at
        ids = [*blocker_ids, *waiter_ids]
        found = settled(cluster, ids, timeout=BLOCKER_SECONDS + 30)
        seen = {i: shown(http, urls[1], i) for i in ids}

    figures["reclaimed after kill -9"] = f"{reclaim_seconds:.1f} s (lease {LEASE_SECONDS} s)"
    figures["killed worker held"] = f"{len(doomed)} of 4 slots, {WAITERS} waiting behind"
    for operation_id in doomed:
        assert seen[operation_id]["status"] == "failed"
        assert seen[operation_id]["error"].startswith(WORKER_LOST), seen[operation_id]
    assert {seen[i]["status"] for i in spared} == {"completed"}
    assert {i: seen[i]["status"] for i in waiter_ids if seen[i]["status"] != "completed"} == {}

    # The dead worker's slots went to the line as they were reclaimed, while the survivor's
    # blockers still held theirs: the first handovers are the reclaims themselves.
    failures = sorted(found[i]["finished_at"] for i in doomed)
    handovers = sorted(promoted_at(found[i]) for i in waiter_ids)
    for failed, handed in zip(failures, handovers[: len(doomed)], strict=True):
        assert abs((handed - failed).total_seconds()) < 1, (failures, handovers)
    assert handovers[len(doomed) - 1] < min(found[i]["finished_at"] for i in spared)
    for operation_id in waiter_ids:
        assert seen[operation_id]["line"]["waited_seconds"] > 0, seen[operation_id]

    # Nothing ran twice, and the survivor ran every waiting operation.
    assert_each_ran_once(cluster, ids, completed=[*spared, *waiter_ids])
    ran_on = {runs(cluster, [i])[i][0][0][0].rsplit("-", 1)[0] for i in waiter_ids}
    assert ran_on == {survivor.name}
    assert most_running_at_once(found.values()) <= 4
    assert cluster.rows("SELECT count(*) FROM operations_slot WHERE operation_id IS NOT NULL") == [
        (0,)
    ]


# Longer than the outage and the reconnections after it, as the default 30 s is: what this
# checks is that nothing is lost or run twice, not what an expired lease does (test above).
OUTAGE_LEASE_SECONDS = 20
OUTAGE_SECONDS = 5
RESTART_OPERATIONS = 8
RESTART_OPERATION_SECONDS = 2


def test_waiting_operations_complete_once_across_a_postgres_restart(start_cluster, figures):
    cluster = start_cluster(
        MAX_CONCURRENT_OPERATIONS="2",
        REQUESTS_PER_MINUTE=UNLIMITED,
        SLOT_LEASE_SECONDS=str(OUTAGE_LEASE_SECONDS),
        CLEANUP_INTERVAL_SECONDS=str(SWEEP_SECONDS),
        worker_threads=2,
    )
    urls = cluster.urls
    pids = cluster.pids()
    with httpx.Client() as http:
        starts = [
            start(http, urls[n % 2], RESTART_OPERATION_SECONDS) for n in range(RESTART_OPERATIONS)
        ]
        assert [x.status for x in starts] == [202] * RESTART_OPERATIONS, starts
        assert [x.body["status"] for x in starts] == ["queued"] * 2 + ["waiting"] * 6
        ids = [x.body["id"] for x in starts]
        wait_for(
            lambda: {r["status"] for r in rows(cluster, ids[:2]).values()} == {"running"},
            "running the first two",
            30,
            cluster,
        )
        time.sleep(0.5)  # mid-run: the first two are a quarter done

        cluster.stop_postgres()
        down_at = datetime.now(UTC)
        time.sleep(OUTAGE_SECONDS)
        cluster.start_postgres()
        up_at = datetime.now(UTC)

        found = settled(cluster, ids, timeout=OUTAGE_LEASE_SECONDS + 40)
        # A web process idle through the outage may answer its first request after it 503
        # (its pool's stale connections; not the line's concern): wait until both serve.
        reads: list[Answer] = []

        def serving() -> bool:
            reads.extend(send(http, "GET", f"{url}/api/operations") for url in urls)
            return all(a.status == 200 for a in reads[-len(urls) :])

        wait_for(serving, "both web processes serving again", 15, cluster)
        seen = {i: shown(http, urls[n % 2], i) for n, i in enumerate(ids)}

    figures["reads after the restart"] = dict(Counter(f"{a.status} {a.error}" for a in reads))
    assert {a.status for a in reads} <= {200, 503}, reads
    recovered = min(r["finished_at"] for r in found.values() if r["finished_at"] > down_at) - up_at
    figures["outage"] = f"{(up_at - down_at).total_seconds():.1f} s"
    figures["first operation ended after the restart"] = f"{recovered.total_seconds():.1f} s"
    assert {i: seen[i]["status"] for i in ids if seen[i]["status"] != "completed"} == {}
    # The restart did cut into the run: some operation was running when the database went,
    # and some was still waiting for a slot then.
    assert any(r["started_at"] < down_at and r["finished_at"] > up_at for r in found.values())
    assert any(promoted_at(found[i]) > up_at for i in ids[2:])
    for operation_id in ids[2:]:
        assert seen[operation_id]["line"]["waited_seconds"] > 0, seen[operation_id]
    assert_each_ran_once(cluster, ids, completed=ids)
    assert most_running_at_once(found.values()) == 2
    assert cluster.rows("SELECT count(*) FROM operations_slot WHERE operation_id IS NOT NULL") == [
        (0,)
    ]
    assert cluster.pids() == pids  # recovered without restarting any coordhub process
