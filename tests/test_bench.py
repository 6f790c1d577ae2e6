"""`make bench` in its quick form, so the benchmark script cannot rot unnoticed.

It starts its own PostgreSQL, Redis and coordhub servers (as `make test` can);
only that it runs and prints every row is checked here, not the figures. The
pure helpers a figure rests on (pairing each handover with the end that made it)
are checked on made-up moments.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.line import Timeline, handover_gaps
from bench.servers import BenchError

ROOT = Path(__file__).resolve().parent.parent
VERDICTS = {"meets", "misses", "info"}
ROWS = (
    "1. GET /api/operations/<id> vs /bench/minimal",
    "1. GET /dashboard/live/ unchanged (204) vs /bench/minimal",
    "2. POST /api/operations -> 202 p50, SQLite",
    "2. POST /api/operations -> 202 p99, SQLite",
    "2. POST /api/operations -> 202 p50, PostgreSQL + Redis",
    "2. POST /api/operations -> 202 p99, PostgreSQL + Redis",
    "3. slots: admitted under contention, SQLite",
    "3. slots: admitted under contention, PostgreSQL",
    "3. rate limit: admitted from a burst of 30, SQLite + local memory",
    "3. rate limit: admitted from a burst of 30, PostgreSQL + Redis",
    "4. rate-limit check, local memory",
    "4. rate-limit check, Redis",
    "5. /bench/minimal under uvicorn",
    "5. /bench/minimal under gunicorn",
    "6. polls per 10 min, 1 tab (computed)",
    "6. polls per 10 min, 5 tabs (computed)",
    "6. polls per 10 min, 20 tabs (computed)",
    "7. scale-out and faults",  # --quick leaves the fault scenarios to tests/scaleout
    "8. history: GET / with",
    "8. history: GET /dashboard/live/ (200) with",
    "8. history: GET /dashboard/live/ unchanged (204) with",
    "8. history: GET /api/operations with",
    "9. change -> visible in the leader tab p50, socket, SQLite",
    "9. change -> visible in the leader tab p95, socket, SQLite",
    "9. change -> visible in the leader tab p50, socket, PostgreSQL + Redis",
    "9. change -> visible in the leader tab p95, socket, PostgreSQL + Redis",
    "9. requests per idle browser",
    "9. idle web process, PostgreSQL: queries/s with 50 sockets",
    "9. idle web process, SQLite: queries/s",
    "9. /bench/minimal on a daphne holding 0 requests",
    "9. /bench/minimal on a daphne holding 100 requests",
    "9. held requests one daphne keeps",
    "9. one change wakes 100 held requests",
    "10. line: slot idle from an end to the next waiting start p50, SQLite",
    "10. line: slot idle from an end to the next waiting start p95, SQLite",
    "10. line: slot idle from an end to the next waiting start p50, PostgreSQL",
    "10. line: slot idle from an end to the next waiting start p95, PostgreSQL",
    "10. line: POST /api/operations joining behind 1,000 waiting vs none p50, SQLite",
    "10. line: POST /api/operations joining behind 1,000 waiting vs none p50, PostgreSQL",
)


def test_quick_benchmark_exits_0_and_prints_every_row_with_a_verdict():
    finished = subprocess.run(
        [sys.executable, "bench/run.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
    )

    assert finished.returncode == 0, finished.stdout + finished.stderr[-4000:]
    lines = finished.stdout.splitlines()
    header = next(line for line in lines if line.startswith("measurement"))
    assert [cell.strip() for cell in header.split("|")] == [
        "measurement",
        "figure",
        "baseline",
        "ratio",
        "target",
        "verdict",
    ]
    for name in ROWS:
        row = next((line for line in lines if line.startswith(name)), None)
        assert row is not None, f"no row {name!r} in:\n{finished.stdout}"
        assert row.rsplit("|", 1)[1].strip() in VERDICTS, row


def test_the_in_process_costs_script_prints_each_read_in_three_columns():
    finished = subprocess.run(
        [sys.executable, "bench/inprocess.py", "--requests", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert finished.returncode == 0, finished.stderr[-4000:]
    lines = finished.stdout.splitlines()
    for name in ("/bench/minimal", "GET /api/operations/<id>", "unchanged GET /dashboard/live/"):
        row = next((line for line in lines if line.startswith(name)), None)
        assert row is not None, finished.stdout
        figures = [float(cell) for cell in row[len(name) :].split()[-3:]]
        assert all(figure > 0 for figure in figures), row


def took_a_free_slot(created: float, started: float, finished: float) -> Timeline:
    return Timeline(created, None, started, finished)


def handed_a_slot(created: float, at: float, started: float, finished: float) -> Timeline:
    return Timeline(created, at - created, started, finished)


def test_each_handover_is_paired_with_the_end_that_freed_its_slot():
    timelines = [
        took_a_free_slot(0.0, 0.01, 1.0),
        took_a_free_slot(0.0, 0.01, 1.5),
        handed_a_slot(0.1, at=1.001, started=1.02, finished=2.0),
        handed_a_slot(0.2, at=1.501, started=1.51, finished=2.5),
    ]

    assert handover_gaps(timelines) == pytest.approx([0.02, 0.01])


def test_two_releases_that_end_in_one_order_and_hand_over_in_the_other_are_paired_crosswise():
    # On PostgreSQL an operation's end is recorded before its release takes the line's lock.
    timelines = [
        took_a_free_slot(0.0, 0.01, 1.000),  # ends first, hands over second
        took_a_free_slot(0.0, 0.01, 1.001),  # ends second, hands over first
        handed_a_slot(0.1, at=1.002, started=1.010, finished=2.0),
        handed_a_slot(0.2, at=1.003, started=1.020, finished=2.0),
    ]

    assert handover_gaps(timelines) == pytest.approx([1.010 - 1.001, 1.020 - 1.000])


def test_an_end_that_found_the_line_empty_stays_unpaired_and_a_late_handover_shows_its_wait():
    timelines = [
        took_a_free_slot(0.0, 0.01, 0.5),  # ends with nobody waiting: its slot stands free
        took_a_free_slot(0.0, 0.01, 1.0),
        took_a_free_slot(0.6, 0.61, 6.0),  # takes that free slot
        handed_a_slot(0.7, at=1.001, started=1.01, finished=2.0),  # the end at 1.0, not 0.5
        handed_a_slot(1.1, at=5.0, started=5.01, finished=5.5),  # the end at 2.0 handed nothing
    ]

    assert handover_gaps(timelines) == pytest.approx([0.01, 3.01])


def test_a_handover_before_any_end_is_an_error():
    timelines = [handed_a_slot(0.0, at=0.5, started=0.6, finished=1.0)]

    with pytest.raises(BenchError):
        handover_gaps(timelines)
