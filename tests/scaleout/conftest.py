from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coordhub.testing.environment import FIGURES_FILE_VARIABLE
from tests.scaleout.cluster import Cluster


@pytest.fixture
def start_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Start a throwaway scale-out cluster configured as the test asks; tear it down after.

    Call it as `start_cluster(MAX_CONCURRENT_OPERATIONS="5", worker_threads=2)`.
    """
    started: list[Cluster] = []

    def start(*, worker_threads: int | None = None, **variables: str) -> Cluster:
        cluster = Cluster(tmp_path, worker_threads=worker_threads, **variables)
        started.append(cluster)
        return cluster.start()

    yield start
    for cluster in started:
        cluster.close()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """Figures a test collects; printed after it (shown with `pytest -s`).

    With COORDHUB_FIGURES_FILE set they are also appended to that file as one JSON
    object per test, which is how `bench/run.py` reports them.
    """
    collected: dict[str, object] = {}
    yield collected
    if not collected:
        return
    lines = "\n".join(f"    {name}: {value}" for name, value in collected.items())
    print(f"\n[scaleout figures] {request.node.name}\n{lines}")
    if path := os.environ.get(FIGURES_FILE_VARIABLE):
        with open(path, "a") as out:
            out.write(json.dumps({"test": request.node.name, "figures": collected}) + "\n")
