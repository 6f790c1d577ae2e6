"""Scale-out mode with faults: two web processes and two workers on PostgreSQL and Redis.

Each test starts its own cluster (`tests/scaleout/cluster.py`) configured for
what it checks, drives it over HTTP from several threads, and breaks a piece of
it: a worker killed with SIGKILL, Redis stopped, PostgreSQL restarted.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.operations.racer import most_at_once
from tests.scaleout.cluster import (
    Answer,
    Cluster,
    running_interval,
    send,
    start_operation,
    wait_for,
    wait_until_finished,
)

pytestmark = pytest.mark.scaleout

# Starts per minute high enough that only the slot cap refuses (every client is 127.0.0.1).
UNLIMITED = "100000"
LEASE_SECONDS = 3
SWEEP_SECONDS = 1
# Slack for scheduling on a busy two-core machine, beyond the lease and one sweep.
MARGIN_SECONDS = 8
OUTAGE_SECONDS = 5
WORKER_LOST = "Worker lost"


def unexpected(answers: list[Answer]) -> list[str]:
    """Describe the answers that are a 5xx other than 503, or no answer at all."""
    return [
        f"{a.method} {a.url} -> {a.status} {a.error} {a.text[:300]}"
        for a in answers
        if a.server_error
    ]


def run_clients(count: int, client: Callable[[int, httpx.Client], list[Answer]]) -> list[Answer]:
    """Run `client(number, http)` in `count` threads started together; return every answer."""
    barrier = threading.Barrier(count)
    answers: list[Answer] = []
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            with httpx.Client() as http:
                barrier.wait()
                answers.extend(client(number, http))
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return answers


def slots_in_use(cluster: Cluster) -> list[int]:
    """`current_status.in_use` as each web process reports it."""
    return [
        httpx.get(f"{url}/api/resource-pool/metrics", timeout=30).json()["current_status"]["in_use"]
        for url in cluster.urls
    ]


def statuses(cluster: Cluster, operation_ids: list[str]) -> dict[str, str]:
    rows = cluster.rows(
        "SELECT id::text, status FROM operations_operation WHERE id::text = ANY(%s)",
        operation_ids,
    )
    return dict(rows)


def test_slot_cap_holds_across_web_processes_and_workers(start_cluster, figures):
    limit = 5
    cluster = start_cluster(MAX_CONCURRENT_OPERATIONS=str(limit), REQUESTS_PER_MINUTE=UNLIMITED)

    # A burst: 20 clients send 200 starts over both web processes. The operations last far
    # longer than the burst takes even on a slow machine, so no slot frees during it.
    def burst(number: int, http: httpx.Client) -> list[Answer]:
        return [start_operation(http, cluster.urls[(number + n) % 2], 60) for n in range(10)]

    began = time.monotonic()
    answers = run_clients(20, burst)
    burst_seconds = time.monotonic() - began
    admitted = [a for a in answers if a.status == 202]
    refusals = Counter(f"{a.status} {a.error}" for a in answers if a.status != 202)
    figures["burst"] = f"{len(answers)} starts from 20 clients in {burst_seconds:.1f} s"
    figures["burst admitted vs limit"] = f"{len(admitted)} vs {limit}"
    figures["burst refusals"] = dict(refusals)
    figures["admitted"], figures["limit"] = len(admitted), limit

    assert unexpected(answers) == []
    assert burst_seconds < 60, "the burst outlasted its operations; nothing is proven"
    assert len(admitted) == limit, cluster.logs()
    assert set(refusals) == {"429 concurrency_limit"}, cluster.logs()

    with httpx.Client() as http:
        for answer in admitted:  # the slots come free as these end
            cancel = f"{cluster.urls[0]}/api/operations/{answer.body['id']}/cancel"
            assert send(http, "POST", cancel).status == 200

    # Then 20 clients keep starting 1 s operations for 8 s: slots free and are taken again.
    def sustained(number: int, http: httpx.Client) -> list[Answer]:
        seen, until = [], time.monotonic() + 8
        while time.monotonic() < until:
            answer = start_operation(http, cluster.urls[number % 2], 1.0)
            seen.append(answer)
            if answer.status != 202:
                time.sleep(0.05)
        return seen

    more = run_clients(20, sustained)
    admitted += [a for a in more if a.status == 202]
    figures["sustained"] = (
        f"{len(more)} starts in 8 s, {sum(a.status == 202 for a in more)} admitted, "
        f"{dict(Counter(f'{a.status} {a.error}' for a in more if a.status != 202))}"
    )
    assert unexpected(more) == []
    assert {(a.status, a.error) for a in more if a.status != 202} <= {(429, "concurrency_limit")}

    with httpx.Client() as http:
        ids = [a.body["id"] for a in admitted]
        finished = wait_until_finished(http, cluster.urls[1], ids, timeout=60)
    outcomes = Counter(operation["status"] for operation in finished.values())
    peak = most_at_once(
        running_interval(operation) for operation in finished.values() if operation["started_at"]
    )
    figures["operations"] = dict(outcomes)
    figures["most running at once (as the workers recorded it) vs limit"] = f"{peak} vs {limit}"
    figures["most running at once"] = peak
    figures["answers"] = len(answers) + len(more)
    figures["5xx other than 503"] = len(unexpected(answers + more))

    assert outcomes == {"cancelled": limit, "completed": len(ids) - limit}
    assert peak == limit
    wait_for(lambda: slots_in_use(cluster) == [0, 0], "freeing every slot", 10, cluster)


RATE_LIMIT = 6
BURST = 18
RATE_HEADER = re.compile(r'"start";r=(\d+);t=(\d+)')


def rate_standing(answer: Answer) -> tuple[int, int]:
    """(remaining, seconds to reset) from the RateLimit header."""
    found = RATE_HEADER.fullmatch(answer.headers.get("ratelimit", ""))
    assert found, f"no RateLimit header: {answer}"
    return int(found[1]), int(found[2])


def test_rate_limit_is_shared_by_the_web_processes(start_cluster, figures):
    cluster = start_cluster(
        REQUESTS_PER_MINUTE=str(RATE_LIMIT), MAX_CONCURRENT_OPERATIONS="50", worker_threads=2
    )
    with httpx.Client() as http:
        # The first start shows how long the client's window has left. Too little for a
        # burst: wait for the next window and send all 18 there; else it is the first of them.
        probe = start_operation(http, cluster.urls[0], 0.2)
        assert probe.status == 202, probe
        _, reset = rate_standing(probe)
        if reset < 8:
            time.sleep(reset + 1)
            burst = []
        else:
            burst = [probe]
        while len(burst) < BURST:
            burst.append(start_operation(http, cluster.urls[len(burst) % 2], 0.2))

    standings = [rate_standing(a) for a in burst]
    admitted = [a for a in burst if a.status == 202]
    figures["admitted vs limit"] = f"{len(admitted)} of {BURST} vs {RATE_LIMIT} per minute"
    figures["remaining after each admitted start"] = [
        r for (r, _), a in zip(standings, burst, strict=True) if a.status == 202
    ]
    figures["window"] = f"{standings[0][1]} s left at the first start of the burst"
    figures["admitted"], figures["limit"] = len(admitted), RATE_LIMIT
    figures["answers"], figures["5xx other than 503"] = len(burst), len(unexpected(burst))

    assert unexpected(burst) == []
    # One window throughout: the seconds to reset never jump back up.
    resets = [t for _, t in standings]
    assert resets == sorted(resets, reverse=True), resets
    assert len(admitted) == RATE_LIMIT
    assert burst[:RATE_LIMIT] == admitted  # the first six, whichever process served them
    assert [r for r, _ in standings[:RATE_LIMIT]] == list(range(RATE_LIMIT - 1, -1, -1))
    for refused in burst[RATE_LIMIT:]:
        assert (refused.status, refused.error) == (429, "rate_limited"), refused
        assert int(refused.headers["retry-after"]) >= 1
    assert {a.url.rsplit("/api", 1)[0] for a in admitted} == set(cluster.urls)


def test_refused_starts_cost_nothing_and_never_let_past_the_limit_across_processes(
    start_cluster, figures
):
    cluster = start_cluster(
        REQUESTS_PER_MINUTE=str(RATE_LIMIT), MAX_CONCURRENT_OPERATIONS="2", worker_threads=2
    )
    with httpx.Client() as http:
        probe = send(http, "GET", f"{cluster.urls[0]}/dashboard/live/")
        reset = int(re.search(r'resets in <span data-countdown="(\d+)"', probe.text)[1])
        if reset < 25:  # the race and what follows must share one window
            time.sleep(reset + 1)

    def racer(number: int, http: httpx.Client) -> list[Answer]:
        url = cluster.urls[number % 2]
        bad = {"kind": "simulated", "params": {"duration": "soon"}}
        return [
            send(http, "POST", f"{url}/api/operations", json=bad)
            if round_ % 3 == 0
            else start_operation(http, url, 60)
            for round_ in range(3)
        ]

    raced = run_clients(12, racer)
    admitted = [a for a in raced if a.status == 202]
    refusals = Counter(f"{a.status} {a.error}" for a in raced if a.status != 202)
    with httpx.Client() as http:
        for answer in admitted:  # free the two slots
            send(http, "POST", f"{cluster.urls[0]}/api/operations/{answer.body['id']}/cancel")
        wait_for(lambda: slots_in_use(cluster) == [0, 0], "freeing both slots", 10, cluster)
        after = []
        while len(after) < 3 * RATE_LIMIT and not any(a.error == "rate_limited" for a in after):
            after.append(start_operation(http, cluster.urls[len(after) % 2], 0.1))
            if after[-1].error == "concurrency_limit":
                time.sleep(0.3)
    later = [a for a in after if a.status == 202]
    figures["raced"] = f"{len(raced)} starts: 202 x{len(admitted)}, " + ", ".join(
        f"{answer} x{count}" for answer, count in sorted(refusals.items())
    )
    figures["admitted in the window"] = f"{len(admitted) + len(later)} vs {RATE_LIMIT} per minute"

    assert unexpected(raced + after) == []
    assert len(admitted) == 2  # the pool refused the rest, at no cost to the budget
    assert set(refusals) <= {"400 invalid_params", "429 concurrency_limit", "429 rate_limited"}
    assert refusals["400 invalid_params"] == 12
    assert len(admitted) + len(later) == RATE_LIMIT
    assert (after[-1].status, after[-1].error) == (429, "rate_limited")


def test_operations_of_a_killed_worker_fail_and_the_others_complete(start_cluster, figures):
    cluster = start_cluster(
        MAX_CONCURRENT_OPERATIONS="4",
        REQUESTS_PER_MINUTE=UNLIMITED,
        SLOT_LEASE_SECONDS=str(LEASE_SECONDS),
        CLEANUP_INTERVAL_SECONDS=str(SWEEP_SECONDS),
        worker_threads=2,
    )
    with httpx.Client() as http:
        starts = [start_operation(http, cluster.urls[n % 2], 10) for n in range(4)]
        assert [a.status for a in starts] == [202] * 4, starts
        ids = [a.body["id"] for a in starts]
        wait_for(
            lambda: set(statuses(cluster, ids).values()) == {"running"},
            "starting all four",
            30,
            cluster,
        )
        # Each worker runs two task loops, so each runs two of the four; the task rows say which.
        runner = dict(
            cluster.rows(
                "SELECT o.id::text, t.worker_ids ->> -1 FROM operations_operation o"
                " JOIN django_tasks_database_dbtaskresult t ON t.id = o.task_id"
                " WHERE o.id::text = ANY(%s)",
                ids,
            )
        )
        victim, survivor = cluster.workers
        doomed = [i for i in ids if runner[i].startswith(f"{victim.name}-")]
        spared = [i for i in ids if runner[i].startswith(f"{survivor.name}-")]
        assert (len(doomed), len(spared)) == (2, 2), runner

        victim.kill()
        killed_at = time.monotonic()
        wait_for(
            lambda: {statuses(cluster, doomed)[i] for i in doomed} == {"failed"},
            "failing the killed worker's operations",
            LEASE_SECONDS + SWEEP_SECONDS + MARGIN_SECONDS,
            cluster,
        )
        reclaim_seconds = time.monotonic() - killed_at
        finished = wait_until_finished(http, cluster.urls[1], ids, timeout=30)

        figures["reclaimed after kill -9"] = (
            f"{reclaim_seconds:.1f} s (lease {LEASE_SECONDS} s, sweep every {SWEEP_SECONDS} s)"
        )
        figures["killed worker held"] = f"{len(doomed)} of {len(ids)}"
        figures["reclaim seconds"] = round(reclaim_seconds, 2)
        figures["lease seconds"], figures["sweep seconds"] = LEASE_SECONDS, SWEEP_SECONDS
        for operation_id in doomed:
            assert finished[operation_id]["status"] == "failed"
            assert finished[operation_id]["error"].startswith(WORKER_LOST)
        for operation_id in spared:
            assert finished[operation_id]["status"] == "completed", finished[operation_id]
            assert finished[operation_id]["progress"] == 100
        wait_for(lambda: slots_in_use(cluster) == [0, 0], "freeing every slot", 10, cluster)
        assert cluster.rows("SELECT id FROM operations_operation WHERE status = 'running'") == []

        # Every slot is usable again: four starts are admitted and the survivor runs them.
        again = [start_operation(http, cluster.urls[n % 2], 0.5) for n in range(4)]
        assert [a.status for a in again] == [202] * 4, again
        rerun = wait_until_finished(http, cluster.urls[0], [a.body["id"] for a in again], 30)
        assert {operation["status"] for operation in rerun.values()} == {"completed"}


def test_starts_fail_closed_while_redis_is_down_and_recover(start_cluster, figures):
    cluster = start_cluster(
        MAX_CONCURRENT_OPERATIONS="5", REQUESTS_PER_MINUTE=UNLIMITED, worker_threads=2
    )
    answers: list[Answer] = []
    pids = cluster.pids()
    with httpx.Client() as http:
        assert start_operation(http, cluster.urls[0], 0.2).status == 202

        cluster.stop_redis()
        down: list[Answer] = []
        until = time.monotonic() + 3
        while time.monotonic() < until:
            for url in cluster.urls:
                down.append(start_operation(http, url, 0.2))
                down.append(send(http, "GET", f"{url}/api/operations"))
                down.append(send(http, "GET", f"{url}/dashboard/live/"))
                down.append(send(http, "GET", f"{url}/api/health"))
        answers += down

        cluster.start_redis()
        restarted_at = time.monotonic()
        recovered: list[Answer] = []

        def every_process_starts_again() -> bool:
            recovered.extend(start_operation(http, url, 0.2) for url in cluster.urls)
            return all(a.status == 202 for a in recovered[-2:])

        wait_for(every_process_starts_again, "starting again after Redis came back", 15, cluster)
        recovery_seconds = time.monotonic() - restarted_at
        answers += recovered
        admitted = [a.body["id"] for a in recovered if a.status == 202]
        finished = wait_until_finished(http, cluster.urls[0], admitted, timeout=30)

    starts = Counter(f"{a.status} {a.error}" for a in down if a.method == "POST")
    reads = Counter(
        a.status for a in down if a.method == "GET" and a.url.endswith("/api/operations")
    )
    live = Counter(a.status for a in down if a.url.endswith("/dashboard/live/"))
    health = Counter(a.status for a in down if a.url.endswith("/api/health"))
    figures["while Redis was down: starts"] = dict(starts)
    figures["while Redis was down: GET /api/operations"] = dict(reads)
    figures["while Redis was down: GET /dashboard/live/"] = dict(live)
    figures["while Redis was down: GET /api/health"] = dict(health)
    figures["starts admitted again after restart"] = f"{recovery_seconds:.1f} s"
    figures["answers"], figures["5xx other than 503"] = len(answers), len(unexpected(answers))

    assert unexpected(answers) == []
    assert set(starts) == {"503 rate_limit_unavailable"}
    assert set(reads) == {200}
    assert set(live) == {200}
    assert set(health) == {503}  # the cache check fails
    assert {operation["status"] for operation in finished.values()} == {"completed"}
    assert cluster.pids() == pids  # recovered without restarting any coordhub process


def test_a_postgres_restart_under_load_answers_503_then_recovers(start_cluster, figures):
    cluster = start_cluster(
        MAX_CONCURRENT_OPERATIONS="5",
        REQUESTS_PER_MINUTE=UNLIMITED,
        SLOT_LEASE_SECONDS=str(LEASE_SECONDS),
        CLEANUP_INTERVAL_SECONDS=str(SWEEP_SECONDS),
        worker_threads=3,
    )
    stop = threading.Event()
    answers: list[Answer] = []  # appended to by the load threads as they go

    def load(url: str) -> None:
        with httpx.Client() as http:
            while not stop.is_set():
                answers.append(send(http, "GET", f"{url}/api/operations"))
                answers.append(start_operation(http, url, 0.3))
                time.sleep(0.05)

    def serving_again() -> bool:
        since = {(a.url, a.status) for a in list(answers) if a.sent >= up_at}
        return all(
            {(f"{url}/api/operations", 200), (f"{url}/api/operations", 202)} <= since
            for url in cluster.urls
        )

    pids = cluster.pids()
    # Two clients per web process: while PostgreSQL is down a request waits up to the
    # pool's 2 s timeout for a connection before its 503.
    loaders = [threading.Thread(target=load, args=(url,)) for url in cluster.urls * 2]
    for loader in loaders:
        loader.start()
    try:
        time.sleep(2)
        cluster.stop_postgres()
        down_at = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        up_at = time.monotonic()
        cluster.start_postgres()
        wait_for(serving_again, "serving reads and starts again", 15, cluster)
        time.sleep(1)  # a little load on the recovered cluster too
    finally:
        stop.set()
        for loader in loaders:
            loader.join()

    during = [a for a in answers if a.sent >= down_at and a.received <= up_at]
    after = [a for a in answers if a.sent >= up_at and a.status in (200, 202)]
    recovery_seconds = min(a.received for a in after) - up_at
    figures["requests"] = f"{len(answers)} ({dict(Counter(a.status for a in answers))})"
    figures["answers while PostgreSQL was down"] = dict(
        Counter(f"{a.status} {a.error}" for a in during)
    )
    figures["first success after the restart began"] = f"{recovery_seconds:.1f} s"
    figures["answers"], figures["5xx other than 503"] = len(answers), len(unexpected(answers))

    assert unexpected(answers) == []
    assert during, "no request was answered while PostgreSQL was down"
    assert {(a.status, a.error) for a in during} == {(503, "database_unavailable")}

    # Nothing admitted is lost, and nothing stays queued or running: operations cut off by
    # the outage end failed once their lease runs out.
    admitted = {a.body["id"] for a in answers if a.status == 202}
    stored = {
        operation_id
        for (operation_id,) in cluster.rows("SELECT id::text FROM operations_operation")
    }
    assert admitted <= stored
    # A start whose enqueue (after its commit) met the outage answers 503, yet its row exists:
    # it never runs, and fails when its lease runs out.
    figures["operations stored but answered 503"] = len(stored - admitted)
    wait_for(
        lambda: (
            not cluster.rows(
                "SELECT id FROM operations_operation WHERE status IN ('queued', 'running')"
            )
        ),
        "every operation finishing",
        LEASE_SECONDS + SWEEP_SECONDS + MARGIN_SECONDS,
        cluster,
    )
    endings = cluster.rows(
        "SELECT status, left(error, 40), count(*) FROM operations_operation"
        " GROUP BY 1, 2 ORDER BY 3 DESC"
    )
    figures["operations by ending"] = {
        f"{status} {error or ''}".strip(): n for status, error, n in endings
    }
    wait_for(lambda: slots_in_use(cluster) == [0, 0], "freeing every slot", 10, cluster)

    # Both workers came through: five 2 s operations at once need both (three loops each),
    # and every slot is free for them.
    with httpx.Client() as http:
        fresh = [start_operation(http, cluster.urls[n % 2], 2) for n in range(5)]
        assert [a.status for a in fresh] == [202] * 5, fresh
        fresh_ids = [a.body["id"] for a in fresh]
        done = wait_until_finished(http, cluster.urls[1], fresh_ids, 30)
    assert {operation["status"] for operation in done.values()} == {"completed"}, done
    ran_on = cluster.rows(
        "SELECT DISTINCT split_part(t.worker_ids ->> -1, '-', 2) FROM operations_operation o"
        " JOIN django_tasks_database_dbtaskresult t ON t.id = o.task_id"
        " WHERE o.id::text = ANY(%s)",
        fresh_ids,
    )
    assert sorted(number for (number,) in ran_on) == ["1", "2"]
    assert cluster.pids() == pids  # recovered without restarting any coordhub process
