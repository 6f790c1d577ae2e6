"""Live updates across processes: a change committed anywhere reaches web process B at once.

One cluster (`tests/scaleout/cluster.py`: PostgreSQL, Redis, two daphne processes and
two workers) serves every test here. An operation is started through web process A
and run by a worker; what waits on web process B is a leader tab's socket or an API
call held open (`?wait=N` with `If-None-Match`, `Prefer: wait=N`). Both workers are
frozen (SIGSTOP) while a test needs the start alone to be the change, and thawed to
let a worker make the next one. Delays are measured from the change as the database
recorded it (`started_at`, `finished_at`: the same machine's clock) to the moment the
answer or the nudge arrived, and held to a bound far below the wait's own timeout.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.scaleout.cluster import FINISHED, Answer, Cluster, send, start_operation, wait_for

pytestmark = pytest.mark.scaleout

# A change is on B's socket, or has woken B's held request, within this (tens of ms, as a rule).
NUDGE_SECONDS = 1.0
WAKE_SECONDS = 2.0
WAIT_SECONDS = 30  # the held requests' own timeout: every answer must come long before it
# Held this long without an answer, a request is known to wait (it would answer in ms).
HELD_SECONDS = 1.5
QUIET_SECONDS = 0.5
LISTEN_QUERY = "LISTEN coordhub_changes"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster(
        tmp_path_factory.mktemp("live-cluster"),
        worker_threads=2,
        MAX_CONCURRENT_OPERATIONS="4",
        REQUESTS_PER_MINUTE="100000",
    )
    try:
        yield started.start()
    finally:
        started.close()


@contextmanager
def workers_frozen(cluster: Cluster) -> Iterator[Callable[[], None]]:
    """Freeze both workers (SIGSTOP); yield `thaw`, which is also called on the way out."""
    frozen = list(cluster.workers)
    for worker in frozen:
        worker.signal(signal.SIGSTOP)

    def thaw() -> None:
        while frozen:
            frozen.pop().signal(signal.SIGCONT)

    try:
        yield thaw
    finally:
        thaw()


def listeners(cluster: Cluster) -> int:
    """How many connections LISTEN for changes: one per web process whose feed started."""
    rows = cluster.rows("SELECT count(*) FROM pg_stat_activity WHERE query = %s", LISTEN_QUERY)
    return rows[0][0]


def timestamp(text: str) -> float:
    """A time the database recorded, as `time.time()` counts it."""
    return datetime.fromisoformat(text).timestamp()


def operation_row(cluster: Cluster, operation_id: str) -> dict[str, Any]:
    status, started_at, finished_at = cluster.rows(
        "SELECT status, started_at, finished_at FROM operations_operation WHERE id::text = %s",
        operation_id,
    )[0]
    return {
        "status": status,
        "started_at": started_at and started_at.timestamp(),
        "finished_at": finished_at and finished_at.timestamp(),
    }


class Nudges:
    """A leader tab's socket on one web process, noting when each nudge arrives.

    A thread reads the socket as frames come, so an arrival is timed when it happens,
    not when the test gets round to looking.
    """

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.arrivals: list[float] = []  # time.time()
        self.frames: list[str | bytes] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        try:
            for frame in self.socket:
                arrived = time.time()
                with self.changed:
                    self.arrivals.append(arrived)
                    self.frames.append(frame)
                    self.changed.notify_all()
        except ConnectionClosed:
            pass

    def arrived(self, count: int, timeout: float) -> bool:
        """Wait until `count` nudges have arrived; say whether they did within `timeout`."""
        with self.changed:
            return self.changed.wait_for(lambda: len(self.arrivals) >= count, timeout)

    def drain(self) -> int:
        """Let nudges come until none does for QUIET_SECONDS; return how many came."""
        while self.arrived(len(self.arrivals) + 1, QUIET_SECONDS):
            pass
        return len(self.arrivals)

    def first_after(self, moment: float) -> float | None:
        return min((arrived for arrived in self.arrivals if arrived >= moment), default=None)


@contextmanager
def live_socket(cluster: Cluster, web: int) -> Iterator[Nudges]:
    """Open `/ws/live/` on web process `web` as its own page would, its feed listening."""
    base = cluster.urls[web]
    url = base.replace("http://", "ws://", 1) + "/ws/live/"
    with connect(url, origin=base, proxy=None, open_timeout=10) as socket:
        nudges = Nudges(socket)
        wait_for(lambda: listeners(cluster) >= 1, "the change feed listening", 10, cluster)
        yield nudges


def held_get(url: str, etag: str) -> Answer:
    """GET `url?wait=WAIT_SECONDS` showing `etag`: answered when the operation changes."""
    with httpx.Client() as http:
        return send(http, "GET", f"{url}?wait={WAIT_SECONDS}", headers={"If-None-Match": etag})


class Background:
    """Run `call` in a thread; `result()` waits for it."""

    def __init__(self, call: Callable[[], Answer]) -> None:
        self.answer: Answer | None = None
        self.arrived = 0.0  # time.time() of the answer
        self.thread = threading.Thread(target=self.run, args=(call,), daemon=True)
        self.thread.start()

    def run(self, call: Callable[[], Answer]) -> None:
        self.answer = call()
        self.arrived = time.time()

    def done(self) -> bool:
        return not self.thread.is_alive()

    def result(self, timeout: float) -> Answer:
        self.thread.join(timeout)
        assert self.answer is not None, f"no answer within {timeout} s"
        return self.answer


def test_a_start_on_web_a_and_a_workers_changes_nudge_a_socket_on_web_b(cluster, figures):
    web_a = cluster.urls[0]
    with live_socket(cluster, 1) as nudges, httpx.Client() as http:
        before = nudges.drain()  # the feed's "look again" when it first listened
        with workers_frozen(cluster) as thaw:
            start = start_operation(http, web_a, 0.5)
            assert start.status == 202, start
            operation_id = start.body["id"]
            created_at = timestamp(start.body["created_at"])
            nudges.arrived(before + 1, NUDGE_SECONDS + 5)
            # Nothing else happens while the workers are frozen: the next nudge is theirs.
            quiet = not nudges.arrived(before + 2, 1.0)
            thaw()
            wait_for(
                lambda: operation_row(cluster, operation_id)["status"] in FINISHED,
                "finishing the operation",
                30,
                cluster,
            )
        time.sleep(NUDGE_SECONDS + 0.5)
    started_nudge = nudges.first_after(created_at)
    row = operation_row(cluster, operation_id)
    running_nudge = nudges.first_after(row["started_at"])
    finished_nudge = nudges.first_after(row["finished_at"])
    delays = {
        "start on A": (started_nudge, created_at),
        "worker marks it running": (running_nudge, row["started_at"]),
        "worker completes it": (finished_nudge, row["finished_at"]),
    }
    for change, (nudged, changed) in delays.items():
        figures[f"{change} -> nudge on B (s)"] = nudged and round(nudged - changed, 3)
    figures["nudges"] = len(nudges.arrivals) - before

    assert quiet, "a nudge came while nothing changed"
    versions = [json.loads(frame)["version"] for frame in nudges.frames]
    assert versions == sorted(set(versions)), nudges.frames  # nudges say "changed", no more
    assert all(set(json.loads(frame)) == {"version"} for frame in nudges.frames)
    assert row["status"] == "completed", row
    for change, (nudged, changed) in delays.items():
        assert nudged is not None, f"no nudge on B after: {change}\n{cluster.logs()}"
        assert nudged - changed < NUDGE_SECONDS, f"{change}: {nudges.arrivals}"


def test_a_request_waiting_on_web_b_answers_when_a_worker_starts_what_web_a_started(
    cluster, figures
):
    web_a, web_b = cluster.urls
    with httpx.Client() as http, workers_frozen(cluster) as thaw:
        start = start_operation(http, web_a, 5)
        assert start.status == 202, start
        operation_id = start.body["id"]
        waiting = Background(
            lambda: held_get(f"{web_b}/api/operations/{operation_id}", start.headers["etag"])
        )
        time.sleep(HELD_SECONDS)
        held = not waiting.done()
        thaw()
        answer = waiting.result(WAIT_SECONDS + 10)
    started_at = timestamp(answer.body["started_at"]) if answer.status == 200 else 0.0
    woke_after = waiting.arrived - started_at
    figures["worker marks it running -> held GET on B answers (s)"] = round(woke_after, 3)
    figures["held for (s)"] = round(answer.received - answer.sent, 3)

    assert held, f"B answered at once: {waiting.answer}"
    assert answer.status == 200, answer
    assert answer.body["status"] in ("running", "completed"), answer.body
    assert answer.headers["etag"] != start.headers["etag"]
    assert woke_after < WAKE_SECONDS, cluster.logs()
    assert answer.received - answer.sent < WAIT_SECONDS / 2


def test_a_client_long_polling_web_b_sees_every_change_a_worker_makes_up_to_the_end(
    cluster, figures
):
    """Each held GET on B answers at the worker's next change; the last shows the end at once."""
    with httpx.Client() as http:
        start = start_operation(http, cluster.urls[0], 1.0)
    assert start.status == 202, start
    url = f"{cluster.urls[1]}/api/operations/{start.body['id']}"
    etag, answers = start.headers["etag"], []
    while not answers or answers[-1].body["status"] not in FINISHED:
        answers.append(held_get(url, etag))
        arrived = time.time()
        assert answers[-1].status == 200, answers[-1]
        etag = answers[-1].headers["etag"]
        assert len(answers) <= 50, "the operation never finished"
    finished = answers[-1].body
    woke_after = arrived - timestamp(finished["finished_at"])
    longest = max(answer.received - answer.sent for answer in answers)
    figures["worker completes it -> long poll on B answers (s)"] = round(woke_after, 3)
    figures["answers on the way"] = len(answers)
    figures["longest held (s)"] = round(longest, 3)

    assert finished["status"] == "completed", finished
    assert finished["progress"] == 100
    assert woke_after < WAKE_SECONDS, cluster.logs()
    assert longest < WAIT_SECONDS / 2, "an answer waited for the timeout, not for the change"


def test_a_start_waiting_on_web_b_answers_200_once_a_worker_completes_it(cluster, figures):
    web_a, web_b = cluster.urls
    body = {"kind": "simulated", "params": {"duration": 2}}
    with httpx.Client() as http:
        sent = time.time()
        answer = send(
            http,
            "POST",
            f"{web_b}/api/operations",
            json=body,
            headers={"Prefer": f"wait={WAIT_SECONDS}"},
        )
        arrived = time.time()
        templates = send(http, "POST", f"{web_a}/api/protected-operation", json={"n": 1})
    woke_after = arrived - timestamp(answer.body["finished_at"])
    figures["worker completes it -> held start on B answers (s)"] = round(woke_after, 3)
    figures["held start of a 2 s operation answered after (s)"] = round(arrived - sent, 3)
    figures["templates' start answered after (s)"] = round(templates.received - templates.sent, 3)

    assert answer.status == 200, answer
    assert answer.headers["preference-applied"] == f"wait={WAIT_SECONDS}"
    assert answer.body["status"] == "completed", answer.body
    assert woke_after < WAKE_SECONDS, cluster.logs()
    assert arrived - sent < WAIT_SECONDS / 2
    assert templates.status == 200, templates
    assert templates.body["status"] == "completed"
    assert templates.body["result"]["processed_data"] == {"n": 1}
    assert templates.received - templates.sent < 2 + WAKE_SECONDS + 3
