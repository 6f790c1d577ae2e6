#!/usr/bin/env python
"""Whether history stays fast: the three reads with 100 and with 100,000 finished operations.

In one process, no server: Django's test client sends each request straight to the
handler, on a SQLite file migrated for real. The same database is measured with 100
finished operations (plus a few running and queued ones), then again once the history
has grown to 100,000; the ratio of the two is the figure (target <= 1.5).

    python bench/history.py                   # about a minute
    python bench/history.py --requests 50
    python bench/history.py --json    # for `make bench`, which prints it as row 8
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: bench/ itself is sys.path[0]

from bench.inprocess import migrated_sqlite  # noqa: E402
from bench.table import Row, at_most  # noqa: E402

SMALL, LARGE = 100, 100_000
ACTIVE = {"running": 3, "queued": 2}
TARGET = 1.5
READS = (
    "GET /",
    "GET /dashboard/live/ (200)",
    "GET /dashboard/live/ unchanged (204)",
    "GET /api/operations",
)
BATCH = 5_000


@dataclass(frozen=True)
class Figures:
    """Milliseconds per request for each read, at SMALL and at LARGE finished operations."""

    small: dict[str, float]
    large: dict[str, float]

    def ratio(self, read: str) -> float:
        return self.large[read] / self.small[read]


def finished_operations(count: int, start: int) -> list:
    """`count` finished operations with parameters and results of a realistic size."""
    from django.utils import timezone

    from operations.models import Operation, Status

    now = timezone.now()
    statuses = (Status.COMPLETED,) * 8 + (Status.FAILED, Status.CANCELLED)
    operations = []
    for n in range(start, start + count):
        data = {"order": n, "customer": f"customer-{n % 977}", "items": list(range(n % 40))}
        status = statuses[n % len(statuses)]
        created = now - timedelta(days=30) + timedelta(seconds=n * 20)
        operations.append(
            Operation(
                id=uuid.uuid4(),
                kind="simulated",
                params={"duration": 2.0, "fail": False, "data": data},
                status=status,
                progress=100,
                message="step 20 of 20",
                result={"duration": 2.0} if status == Status.COMPLETED else None,
                error="Simulated failure." if status == Status.FAILED else "",
                client_key=f"ip:10.0.{n % 256}.{n % 7}",
                created_at=created,
                started_at=created + timedelta(seconds=1),
                finished_at=created + timedelta(seconds=3),
            )
        )
    return operations


def seed_finished(total: int) -> None:
    """Grow the history to `total` finished operations, in batches."""
    from operations.models import Operation

    have = Operation.objects.finished().count()
    while have < total:
        count = min(BATCH, total - have)
        Operation.objects.bulk_create(finished_operations(count, have), batch_size=500)
        have += count


def seed_active() -> None:
    """A few running and queued operations, newer than any finished one."""
    from django.utils import timezone

    from operations.models import Operation

    Operation.objects.bulk_create(
        Operation(
            kind="simulated",
            params={"duration": 600, "data": {"n": n}},
            status=status,
            progress=40 if status == "running" else 0,
            created_at=timezone.now() + timedelta(days=1, seconds=n),
        )
        for status, count in ACTIVE.items()
        for n in range(count)
    )


def per_request_ms(send: Callable[[], object], requests: int) -> float:
    """The median of 5 runs of `requests` requests each, in ms per request."""
    for _ in range(10):  # warm up: the first requests compile templates and fill caches
        send()
    runs = []
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(requests):
            send()
        runs.append((time.perf_counter() - began) / requests * 1000)
    return statistics.median(runs)


def reads_ms(requests: int) -> dict[str, float]:
    from django.test import Client

    from dashboard.state import CONTENT_HEADER

    client = Client(HTTP_HOST="127.0.0.1")
    first = client.get("/dashboard/live/")
    assert first.status_code == 200, first.status_code
    content = first.headers[CONTENT_HEADER]

    def expect(status: int, path: str, **headers: str) -> Callable[[], object]:
        def send() -> None:
            response = client.get(path, headers=headers)
            assert response.status_code == status, (path, response.status_code)

        return send

    sends = {
        READS[0]: expect(200, "/"),
        READS[1]: expect(200, "/dashboard/live/"),
        READS[2]: expect(204, "/dashboard/live/", **{CONTENT_HEADER: content}),
        READS[3]: expect(200, "/api/operations"),
    }
    return {read: per_request_ms(send, requests) for read, send in sends.items()}


def measure(directory: Path, requests: int, progress: Callable[[str], None]) -> Figures:
    """Migrate a SQLite file in `directory`, then measure at SMALL and LARGE operations."""
    migrated_sqlite(directory / "history.sqlite3")
    seed_active()
    seed_finished(SMALL)
    progress(f"history: the three reads with {SMALL} finished operations")
    small = reads_ms(requests)
    progress(f"history: growing the history to {LARGE} finished operations")
    seed_finished(LARGE)
    progress(f"history: the three reads with {LARGE} finished operations")
    large = reads_ms(requests)
    return Figures(small, large)


def in_temporary_directory(requests: int, progress: Callable[[str], None]) -> Figures:
    directory = Path(tempfile.mkdtemp(prefix="coordhub-history-"))
    try:
        return measure(directory, requests, progress)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def rows(requests: int) -> list[Row]:
    """Row 8 of `make bench`: each read's cost at LARGE against SMALL, from a clean process."""
    finished = subprocess.run(
        [sys.executable, __file__, "--json", "--requests", str(requests)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"bench/history.py failed:\n{finished.stderr[-4000:]}")
    figures = Figures(**json.loads(finished.stdout))
    return [
        Row(
            f"8. history: {read} with {LARGE:,} vs {SMALL} finished operations",
            f"{figures.large[read]:.2f} ms",
            f"{figures.small[read]:.2f} ms",
            figures.ratio(read),
            at_most(TARGET),
        )
        for read in READS
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="per run (5 runs per figure)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = in_temporary_directory(args.requests, lambda line: print(line, file=sys.stderr))
    if args.json:
        print(json.dumps(asdict(figures)))
        return 0
    print(f"ms per request (median of 5 runs of {args.requests}), in process, SQLite file")
    print(f"{'read':38} {SMALL:>10} {LARGE:>10} {'ratio':>7}  target <= {TARGET}")
    for read in READS:
        small, large = figures.small[read], figures.large[read]
        print(f"{read:38} {small:10.2f} {large:10.2f} {figures.ratio(read):7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
