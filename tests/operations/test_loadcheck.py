"""`manage.py loadcheck` against real coordhub servers, and its checks on their own."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from operations import loadcheck
from tests.live import ROOT, LiveServer
from tests.services import free_port

CHECKS = ["configuration", "response times", "concurrency", "rate limiting", "polling"]


def run_loadcheck(url: str, out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "loadcheck", url, "--yes", "--out", str(out), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start a fresh coordhub (testing profile): its own database and rate-limit counters."""
    started = []

    def start(**environ: str) -> LiveServer:
        server = LiveServer(tmp_path, COORDHUB_ENV="testing", **environ).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def statuses(out: Path) -> dict[str, str]:
    results = json.loads((out / loadcheck.RESULTS_FILE).read_text())
    return {test["name"]: test["status"] for test in results["tests"]}


def check_named(out: Path, name: str) -> dict[str, Any]:
    results = json.loads((out / loadcheck.RESULTS_FILE).read_text())
    return next(test for test in results["tests"] if test["name"] == name)


def wait_until_all_finished(url: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        operations = httpx.get(f"{url}/api/operations").json()["operations"]
        if all(op["finished_at"] for op in operations) or time.monotonic() > deadline:
            return operations
        time.sleep(0.2)


def test_passes_and_cancels_what_it_started_against_a_deployment_that_keeps_its_limits(
    serve, tmp_path
):
    server = serve()
    out = tmp_path / "out"

    finished = run_loadcheck(server.url, out)

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert statuses(out) == dict.fromkeys(CHECKS, "passed")
    results = json.loads((out / loadcheck.RESULTS_FILE).read_text())
    assert results["base_url"] == server.url
    assert {key: results["summary"][key] for key in ("total", "passed", "failed")} == {
        "total": 5,
        "passed": 5,
        "failed": 0,
    }
    summary = (out / loadcheck.SUMMARY_FILE).read_text()
    assert all(f"| {name} | passed |" in summary for name in CHECKS)
    verdicts = [line.split()[0] for line in finished.stdout.splitlines() if "  (" in line]
    assert verdicts == ["PASS"] * 5
    assert "start up to 11 simulated operations" in finished.stdout
    assert "All 5 checks passed." in finished.stdout
    concurrency = check_named(out, "concurrency")["result"]
    assert concurrency["cleanup"] == {"cancelled": 3, "already_finished": 0, "not_cancelled": []}
    operations = wait_until_all_finished(server.url)
    assert len(operations) == 3
    assert {op["status"] for op in operations} == {"cancelled"}


def test_fails_the_rate_limit_check_when_rate_limiting_is_off(serve, tmp_path):
    server = serve(ENABLE_RATE_LIMITING="false")
    out = tmp_path / "out"

    finished = run_loadcheck(server.url, out)

    assert finished.returncode != 0
    assert statuses(out)["rate limiting"] == "failed"
    assert statuses(out)["concurrency"] == "passed"
    assert "rate limiting is off" in check_named(out, "rate limiting")["error"]
    assert finished.stderr == "CommandError: 1 of 5 checks failed: rate limiting.\n"


def test_fails_the_concurrency_check_when_more_run_than_expected(serve, tmp_path):
    server = serve(MAX_CONCURRENT_OPERATIONS="10")
    out = tmp_path / "out"

    finished = run_loadcheck(server.url, out, "--expect-slots", "3")

    assert finished.returncode != 0
    assert statuses(out)["concurrency"] == "failed"
    assert statuses(out)["configuration"] == "failed"
    concurrency = check_named(out, "concurrency")
    assert concurrency["result"]["admitted"] == 5
    assert "5 admitted, more than the 3 slots" in concurrency["error"]
    assert "10 slots reported, 3 expected" in check_named(out, "configuration")["error"]


def test_says_in_one_line_that_nothing_answered(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"

    finished = run_loadcheck(url, tmp_path / "out")

    assert finished.returncode == 1
    message = f"CommandError: coordhub at {url} did not answer: connection refused\n"
    assert finished.stderr == message
    assert not (tmp_path / "out").exists()


# The checks on their own, against fake deployments


def fake_deployment(
    *, enabled: bool = True, rpm: int = 5, slots: int = 3, answer: Callable[[int], str]
) -> httpx.Client:
    """A client for an in-process coordhub reporting these limits.

    `answer(n)` decides the n-th start: "admit", "rate_limited" or "concurrency_limit".
    """
    numbers = itertools.count(1)
    lock = threading.Lock()

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/operations":
            with lock:
                number = next(numbers)
            verdict = answer(number)
            if verdict == "admit":
                return httpx.Response(202, json={"id": f"op-{number}"})
            return httpx.Response(429, json={"error": verdict}, headers={"Retry-After": "1"})
        if request.url.path.endswith("/cancel"):
            return httpx.Response(200, json={})
        if request.url.path == "/api/health":
            return httpx.Response(200, json={"status": "healthy", "failed": []})
        return httpx.Response(
            200,
            json={
                "rate_limiting": {"enabled": enabled, "requests_per_minute": rpm},
                "concurrency_control": {"max_concurrent_operations": slots},
                "polling": {
                    "initial_interval_ms": 5000,
                    "max_interval_ms": 30000,
                    "multiplier": 1.2,
                    "max_attempts": 100,
                },
                "system_info": {"profile": "testing"},
            },
        )

    return httpx.Client(base_url="http://coordhub.test", transport=httpx.MockTransport(handle))


def admit_first(admitted: int, after: int = 0) -> Callable[[int], str]:
    """Refuse the first `after` starts as rate_limited, admit `admitted`, refuse the rest."""

    def answer(number: int) -> str:
        if number <= after:
            return "rate_limited"
        return "admit" if number <= after + admitted else "concurrency_limit"

    return answer


def limits(**values: Any) -> loadcheck.Limits:
    defaults = {"rate_limiting_enabled": True, "requests_per_minute": 5, "slots": 3}
    return loadcheck.Limits(**(defaults | {"polling": None} | values))


def test_rate_limit_check_fails_when_every_start_is_admitted_despite_the_report():
    client = fake_deployment(answer=lambda number: "admit")

    with pytest.raises(loadcheck.CheckFailed) as failed:
        loadcheck.check_rate_limiting(loadcheck.Starts(client), limits())

    assert str(failed.value).startswith("6 of 6 starts admitted")
    assert "more than the limit of 5 per minute admitted" in str(failed.value)
    assert "no 429 rate_limited after 6 starts" in str(failed.value)


def test_concurrency_check_fails_when_more_than_the_slots_are_admitted():
    client = fake_deployment(answer=admit_first(4))

    with pytest.raises(loadcheck.CheckFailed) as failed:
        loadcheck.check_concurrency(loadcheck.Starts(client), limits(), print)

    assert "4 admitted, more than the 3 slots" in str(failed.value)


def test_concurrency_check_passes_when_the_rest_are_refused_for_want_of_a_slot():
    client = fake_deployment(answer=admit_first(3))
    starts = loadcheck.Starts(client)

    outcome = loadcheck.check_concurrency(starts, limits(), print)

    assert outcome.summary.startswith("3 of 5 parallel 5 s starts admitted for 3 slots")
    assert outcome.result["concurrency_limit"] == 2
    assert starts.cancel_all()["cancelled"] == 3


def test_concurrency_check_waits_for_a_fresh_window_when_the_budget_was_spent():
    client = fake_deployment(answer=admit_first(3, after=5))
    notes = []

    outcome = loadcheck.check_concurrency(loadcheck.Starts(client), limits(), notes.append)

    assert "waiting 1 s for a fresh window" in notes[0]
    assert outcome.result["admitted"] == 3
    assert outcome.result["rate_limited"] == 0


def test_run_starts_nothing_when_the_plan_is_declined():
    client = fake_deployment(answer=lambda number: pytest.fail("started an operation"))
    plans = []

    with pytest.raises(loadcheck.Declined):
        loadcheck.run(
            client, requests=3, confirm=lambda plan: plans.append(plan) or False, echo=print
        )

    assert "start up to 11 simulated operations" in plans[0]
    assert "whole start budget (5 per minute)" in plans[0]


def test_an_api_key_is_sent_as_a_bearer_token():
    assert loadcheck.connect("http://coordhub.test", "k3y").headers["Authorization"] == "Bearer k3y"
    assert "Authorization" not in loadcheck.connect("http://coordhub.test").headers


def test_the_default_ladder_polls_less_than_half_as_often_as_every_two_seconds():
    backoff = loadcheck.backoff_polls(5000, 30000, 1.2, 100, horizon_seconds=600)

    assert loadcheck.fixed_polls(2, horizon_seconds=600) == 300
    assert backoff == 25  # 5, 6, 7.2, ... 25.8 s (10 polls in 130 s), then 15 of 30 s
    assert backoff < 300 / 2


def test_the_ladder_stops_after_max_attempts():
    assert loadcheck.backoff_polls(1000, 1000, 1.5, 10, horizon_seconds=600) == 10


def test_polling_check_fails_a_ladder_that_saves_too_little():
    ladder = {
        "initial_interval_ms": 2000,
        "max_interval_ms": 3000,
        "multiplier": 1.1,
        "max_attempts": 1000,
    }

    with pytest.raises(loadcheck.CheckFailed) as failed:
        loadcheck.check_polling(limits(polling=ladder))

    assert "vs 300 at a fixed 2 s" in str(failed.value)
    assert "at least 50% fewer needed" in str(failed.value)


def test_percentile_is_nearest_rank():
    values = [float(n) for n in range(1, 101)]

    assert loadcheck.percentile(values, 50) == 50.0
    assert loadcheck.percentile(values, 95) == 95.0
    assert loadcheck.percentile([0.3], 95) == 0.3
