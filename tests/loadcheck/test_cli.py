"""`coordhub-loadcheck` and its alias `manage.py loadcheck` against real coordhub servers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coordhub.testing.services import free_port
from loadcheck.report import RESULTS_FILE, SUMMARY_FILE
from tests.live import ROOT, LiveServer

CHECKS = ["configuration", "response times", "concurrency", "rate limiting", "polling"]
ENTRY_POINT = Path(sys.executable).parent / "coordhub-loadcheck"


def run_loadcheck(url: str, out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "loadcheck", url, "--yes", "--out", str(out), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_entry_point(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ENTRY_POINT), *arguments], capture_output=True, text=True, timeout=120
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
    results = json.loads((out / RESULTS_FILE).read_text())
    return {test["name"]: test["status"] for test in results["tests"]}


def check_named(out: Path, name: str) -> dict[str, Any]:
    results = json.loads((out / RESULTS_FILE).read_text())
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
    results = json.loads((out / RESULTS_FILE).read_text())
    assert results["base_url"] == server.url
    assert {key: results["summary"][key] for key in ("total", "passed", "failed")} == {
        "total": 5,
        "passed": 5,
        "failed": 0,
    }
    summary = (out / SUMMARY_FILE).read_text()
    assert all(f"| {name} | passed |" in summary for name in CHECKS)
    verdicts = [line.split()[0] for line in finished.stdout.splitlines() if "  (" in line]
    assert verdicts == ["PASS"] * 5
    assert "start up to 11 simulated operations" in finished.stdout
    assert "All 5 checks passed." in finished.stdout
    concurrency = check_named(out, "concurrency")["result"]
    assert concurrency["cleanup"] == {"cancelled": 3, "already_finished": 0, "not_cancelled": []}
    operations = wait_until_all_finished(server.url)
    # The refused concurrency starts cost nothing: the rate check still had 2 of its 5
    # (cancelled in its own clean-up, unless they had completed already).
    assert len(operations) == 5
    assert {op["status"] for op in operations} <= {"cancelled", "completed"}
    assert check_named(out, "rate limiting")["result"]["admitted"] == 2
    polling = check_named(out, "polling")["result"]
    assert polling["replayed"]["backoff_polls"] == 25
    assert polling["measured"]["answered_204"]["count"] >= 1
    assert polling["measured"]["unchanged_answered_200"] == 0


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


# The console entry point


def test_the_entry_point_is_installed_and_explains_itself():
    finished = run_entry_point("--help")

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith("usage: coordhub-loadcheck [-h] [--api-key API_KEY]")
    assert "--poll-window POLL_WINDOW" in finished.stdout
    assert shutil.which("coordhub-loadcheck", path=str(ENTRY_POINT.parent)) == str(ENTRY_POINT)


def test_the_entry_point_says_in_one_line_that_nothing_answered(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"

    finished = run_entry_point(url, "--yes", "--out", str(tmp_path / "out"))

    assert finished.returncode == 1
    message = f"coordhub-loadcheck: coordhub at {url} did not answer: connection refused\n"
    assert finished.stderr == message
    assert finished.stdout == f"coordhub loadcheck of {url}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["ftp://coordhub.test"], "'ftp://coordhub.test' is not an http:// or https:// URL."),
        (["http://coordhub.test", "--requests", "0"], "--requests must be at least 1."),
        (
            ["http://coordhub.test", "--poll-window", "0"],
            "--poll-window must be more than 0 seconds.",
        ),
    ],
)
def test_the_entry_point_refuses_bad_arguments_before_sending_anything(arguments, said):
    finished = run_entry_point(*arguments)

    assert finished.returncode == 1
    assert finished.stderr == f"coordhub-loadcheck: {said}\n"
