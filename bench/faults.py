"""Section 7: scale-out and faults, from the tests that prove them (`tests/scaleout`).

Those tests start their own PostgreSQL, Redis, two daphne processes and two workers,
break a piece (a worker killed with SIGKILL, Redis stopped, PostgreSQL restarted) and
assert the outcome. Run here, they also write what they measured to a file, and each
figure becomes a row: admitted against the limit, reclaim time against the lease, and
the share of answers that were a 5xx other than 503 (an honest "unavailable").
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.table import Row, exactly, failed
from coordhub.testing.environment import FIGURES_FILE_VARIABLE, child_environment

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 900
NOT_RUN = "7. scale-out and faults"

Figures = dict[str, Any]


def slot_cap(figures: Figures) -> list[Row]:
    limit = figures["limit"]
    return [
        Row(
            "7. slot cap, 200 starts from 20 clients over 2 web processes",
            f"{figures['admitted']} admitted",
            f"limit {limit} slots",
            figures["admitted"] / limit,
            exactly(1.0),
        ),
        Row(
            "7. slot cap, most running at once as the 2 workers recorded it",
            f"{figures['most running at once']} running",
            f"limit {limit} slots",
            figures["most running at once"] / limit,
            exactly(1.0),
        ),
        unexpected_errors("7. slot cap: 5xx other than 503", figures),
    ]


def rate_limit(figures: Figures) -> list[Row]:
    limit = figures["limit"]
    return [
        Row(
            f"7. rate limit, one client's {figures['answers']} starts over 2 web processes",
            f"{figures['admitted']} admitted",
            f"limit {limit}/min",
            figures["admitted"] / limit,
            exactly(1.0),
        )
    ]


def killed_worker(figures: Figures) -> list[Row]:
    lease, sweep = figures["lease seconds"], figures["sweep seconds"]
    return [
        Row(
            "7. kill -9 of a worker: its operations failed (Worker lost) after",
            f"{figures['reclaim seconds']:.1f} s",
            f"lease {lease} s (sweep every {sweep} s)",
            figures["reclaim seconds"] / lease,
        )
    ]


def redis_stopped(figures: Figures) -> list[Row]:
    return [unexpected_errors("7. Redis stopped then started: 5xx other than 503", figures)]


def postgres_restarted(figures: Figures) -> list[Row]:
    return [unexpected_errors("7. PostgreSQL restarted under load: 5xx other than 503", figures)]


def sqlite_writers(figures: Figures) -> list[Row]:
    measurement = "7. embedded SQLite, 16 concurrent writers: 5xx or no answer"
    return [error_share(measurement, figures["5xx or no answer"], figures["answers"])]


def unexpected_errors(measurement: str, figures: Figures) -> Row:
    return error_share(measurement, figures["5xx other than 503"], figures["answers"])


def error_share(measurement: str, errors: int, answers: int) -> Row:
    return Row(measurement, f"{errors}", f"of {answers} answers", errors / answers, exactly(0.0))


# Each test's name (as pytest reports it) and the rows built from its figures.
SCENARIOS: dict[str, Callable[[Figures], list[Row]]] = {
    "test_slot_cap_holds_across_web_processes_and_workers": slot_cap,
    "test_rate_limit_is_shared_by_the_web_processes": rate_limit,
    "test_operations_of_a_killed_worker_fail_and_the_others_complete": killed_worker,
    "test_starts_fail_closed_while_redis_is_down_and_recover": redis_stopped,
    "test_a_postgres_restart_under_load_answers_503_then_recovers": postgres_restarted,
    "test_sqlite_serves_sixteen_busy_clients_without_errors_or_locks": sqlite_writers,
}


def rows(directory: Path) -> list[Row]:
    """Run the scale-out tests and turn what they measured into rows."""
    figures_file = directory / "scaleout-figures.jsonl"
    command = [sys.executable, "-m", "pytest", "tests/scaleout", "-q", "-p", "no:cacheprovider"]
    finished = subprocess.run(
        command,
        cwd=ROOT,
        # The child environment without DJANGO_SETTINGS_MODULE: pytest uses its own settings.
        env=child_environment(**{FIGURES_FILE_VARIABLE: str(figures_file)}),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    (directory / "scaleout-tests.log").write_text(finished.stdout + finished.stderr)
    measured = read(figures_file)
    built: list[Row] = []
    for test, build in SCENARIOS.items():
        if test in measured:
            built += build(measured[test])
        else:
            built.append(failed(f"7. {test}", RuntimeError("the test recorded no figures")))
    if finished.returncode != 0:
        summary = (finished.stdout.strip().splitlines() or ["no output"])[-1]
        error = RuntimeError(f"pytest exit {finished.returncode}: {summary}")
        built.append(failed("7. scale-out tests", error))
    return built


def read(path: Path) -> dict[str, Figures]:
    if not path.exists():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {record["test"]: record["figures"] for record in records}
