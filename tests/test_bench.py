"""`make bench` in its quick form, so the benchmark script cannot rot unnoticed.

It starts its own PostgreSQL, Redis and coordhub servers (as `make test` can);
only that it runs and prints every row is checked here, not the figures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
