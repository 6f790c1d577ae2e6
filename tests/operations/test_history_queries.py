"""History stays fast: the reads that show operations use an index and never load params or result.

Not timed (`bench/history.py` times them at 100 and 100,000 operations): these check
the two things that keep the cost flat, on every read that shows summaries.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from operations.admission import admit
from operations.models import Operation, Status

pytestmark = pytest.mark.django_db

READS = ("/", "/dashboard/live/", "/api/operations")
TABLE = '"operations_operation"'


@pytest.fixture(autouse=True)
def history(configure):
    configure(max_concurrent_operations=3, allow_anonymous=True)
    Operation.objects.bulk_create(
        Operation(
            kind="simulated",
            params={"data": {"n": n}},
            status=(Status.COMPLETED, Status.FAILED, Status.CANCELLED)[n % 3],
            result={"duration": 1.0},
        )
        for n in range(30)
    )
    running = admit("simulated", {"data": {"secret": 1}})
    Operation.objects.filter(pk=running.pk).update(status=Status.RUNNING)
    admit("simulated", {})


def operation_selects(client, path: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    selects = [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"].startswith("SELECT") and TABLE in query["sql"]
    ]
    assert selects, f"{path} read no operation"
    return selects


def plan(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        return [row[-1] for row in cursor.fetchall()]


@pytest.mark.parametrize("path", READS)
def test_summary_rows_never_load_params_or_result(client, path):
    for sql in operation_selects(client, path):
        assert f'{TABLE}."params"' not in sql, sql
        assert f'{TABLE}."result"' not in sql, sql


@pytest.mark.sqlite  # EXPLAIN QUERY PLAN is SQLite's
@pytest.mark.parametrize("path", READS)
def test_operations_are_read_through_an_index_never_sorted_whole(client, path):
    """No read scans the table; only the active ones and a window of ended ones are sorted."""
    for sql in operation_selects(client, path):
        steps = plan(sql)
        # The table by its name, or by the alias Django gives it in a subquery (U0).
        reads = [
            step
            for step in steps
            if re.search(r"\b(operations_operation|U\d+)\b", step)
            and not re.search(r"clientturn|operations_slot", step)
        ]
        assert reads, steps
        for step in reads:
            assert "INDEX" in step or "PRIMARY KEY" in step, (sql, steps)
        if any("TEMP B-TREE" in step for step in steps):
            # Sorted or grouped: the few active ones (found by status), or the charts' rows,
            # those that ended within their window (a range of finished_at, whatever the
            # history's length).
            assert all(
                "operation_status_recent_idx (status=?" in step
                or "finished_at>? AND finished_at<?)" in step
                for step in reads
            ), steps


@pytest.mark.sqlite  # EXPLAIN QUERY PLAN is SQLite's
def test_the_newest_finished_ones_walk_created_at_and_stop(client):
    from dashboard.state import version_queries

    _, finished, _ = version_queries(connection.alias)
    sql, params = finished
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        steps = [row[-1] for row in cursor.fetchall()]

    assert steps == [
        "SCAN operations_operation USING INDEX operations_operation_created_at_9ea2fc71"
    ]
