"""The charts' data: intervals on the clock, slots in use, outcomes, refusals and durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from monitoring import charts
from monitoring.charts import RANGES, chart_range, interval_edges, rank, series
from operations import refusals
from operations.exceptions import InvalidRequest
from operations.models import Operation, Status

# 2½ minutes into the current five-minute interval of the hour range.
NOW = datetime(2030, 1, 1, 12, 2, 30, tzinfo=UTC)
HOUR, DAY = RANGES["hour"], RANGES["day"]


def at(hours: int, minutes: int, seconds: float = 0) -> datetime:
    return datetime(2030, 1, 1, hours, minutes, tzinfo=UTC) + timedelta(seconds=seconds)


def operation(
    created: datetime,
    finished: datetime | None = None,
    status: Status = Status.COMPLETED,
    kind: str = "simulated",
    started: datetime | None = None,
) -> Operation:
    return Operation.objects.create(
        kind=kind,
        status=status,
        created_at=created,
        started_at=started or created,
        finished_at=finished,
    )


def interval_at(found: charts.Series, start: datetime) -> charts.Interval:
    return next(interval for interval in found.intervals if interval.start == start)


def test_intervals_lie_on_the_clock_and_the_last_one_holds_now():
    hour, day = interval_edges(HOUR, NOW), interval_edges(DAY, NOW)

    assert len(hour) == 12
    assert hour[0] == (at(11, 5), at(11, 10))
    assert hour[-1] == (at(12, 0), at(12, 5))
    assert len(day) == 24
    assert day[0] == (at(13, 0) - timedelta(days=1), at(14, 0) - timedelta(days=1))
    assert day[-1] == (at(12, 0), at(13, 0))


@pytest.mark.parametrize("name", [None, "", "hour"])
def test_no_range_or_an_empty_one_is_the_last_hour(name):
    assert chart_range(name) is HOUR


@pytest.mark.parametrize("name", ["week", "HOUR", "x" * 500])
def test_an_unknown_range_is_refused_naming_the_ranges_there_are(name):
    with pytest.raises(InvalidRequest) as refused:
        chart_range(name)

    assert str(refused.value).endswith("is not a chart range; use hour or day.")
    assert len(str(refused.value)) < 100  # a long value is cut short, not echoed whole


@pytest.mark.django_db
def test_slots_in_use_average_each_operations_overlap_with_each_interval():
    operation(at(11, 50), at(11, 57, 30))  # all of 11:50-11:55, half of 11:55-12:00
    operation(at(11, 58), status=Status.RUNNING)  # 2 min of 11:55-12:00, all of the current
    operation(at(10, 0), at(11, 6))  # began before the range: 1 min of 11:05-11:10
    operation(at(11, 41), at(11, 53))  # 4 min of 11:40-11:45, all of the next, 3 min of 11:50

    found = series(HOUR, NOW)

    assert [interval.slots for interval in found.intervals] == [
        0.2,
        *[0.0] * 6,
        0.8,
        1.0,
        1.6,
        0.9,  # (150 s + 120 s) / 300 s
        1.0,  # the current interval: 150 s held of the 150 s gone by
    ]


@pytest.mark.django_db
def test_slots_in_use_count_cancelled_operations_and_queued_ones_too():
    operation(at(11, 55), at(11, 57, 30), status=Status.CANCELLED)
    operation(at(12, 1, 15), status=Status.QUEUED)

    found = series(HOUR, NOW)

    assert interval_at(found, at(11, 55)).slots == 0.5
    assert interval_at(found, at(12, 0)).slots == 0.5  # 75 s of 150 s


@pytest.mark.django_db
def test_slots_in_use_count_from_the_end_of_a_wait_and_never_a_wait_left_unserved():
    waited = operation(at(11, 55), at(11, 57, 30))
    Operation.objects.filter(pk=waited.pk).update(
        wait_reason="concurrency_limit", waited_seconds=60
    )
    left = operation(at(11, 55), at(11, 59), status=Status.CANCELLED)
    Operation.objects.filter(pk=left.pk).update(wait_reason="concurrency_limit")  # never served
    Operation.objects.create(kind="simulated", status=Status.WAITING, created_at=at(12, 0))

    found = series(HOUR, NOW)

    assert interval_at(found, at(11, 55)).slots == 0.3  # 90 s of 300 s
    assert interval_at(found, at(12, 0)).slots == 0.0


@pytest.mark.django_db
def test_outcomes_count_in_the_interval_they_ended_in_and_an_edge_belongs_to_the_later():
    operation(at(11, 40), at(11, 55))  # on the edge: 11:55-12:00
    operation(at(11, 40), at(11, 54, 59.999), status=Status.FAILED)
    operation(at(11, 40), at(12, 2), status=Status.FAILED)
    operation(at(11, 40), at(12, 1), status=Status.CANCELLED)  # neither completed nor failed
    operation(at(10, 0), at(11, 4, 59))  # ended before the range

    found = series(HOUR, NOW)

    counts = [(i.start, i.completed, i.failed) for i in found.intervals if i.outcomes]
    assert counts == [(at(11, 50), 0, 1), (at(11, 55), 1, 0), (at(12, 0), 0, 1)]


@pytest.mark.django_db
def test_refusals_add_up_per_interval_and_by_reason():
    for minute in (at(11, 55), at(11, 59, 59), at(12, 0), at(12, 2)):
        refusals.record("concurrency_limit", at=minute)
    refusals.record("rate_limited", at=at(12, 2, 10))
    refusals.record("rate_limited", at=at(11, 4, 59))  # before the range

    found = series(HOUR, NOW)

    assert [interval.refused for interval in found.intervals[-3:]] == [0, 2, 3]
    assert sum(interval.refused for interval in found.intervals) == 5
    assert found.refused_by_reason == {"concurrency_limit": 4, "rate_limited": 1}


@pytest.mark.django_db
def test_durations_are_nearest_rank_percentiles_per_kind_most_completed_first():
    for seconds in range(1, 21):  # 1 … 20 s, in no order of finishing
        started = at(11, 30, seconds)
        operation(started, started + timedelta(seconds=21 - seconds))
    operation(at(11, 40), at(11, 40, 2.5), kind="other")
    operation(at(11, 40), at(11, 50), status=Status.FAILED)  # failed: not a duration
    operation(at(10, 0), at(10, 1), kind="old")  # ended before the range

    found = series(HOUR, NOW)

    assert [(d.kind, d.completed, d.p50, d.p95) for d in found.durations] == [
        ("simulated", 20, 10.0, 19.0),
        ("other", 1, 2.5, 2.5),
    ]


@pytest.mark.parametrize(
    ("percentile", "count", "index"), [(50, 1, 0), (50, 4, 1), (50, 5, 2), (95, 20, 18), (95, 2, 1)]
)
def test_rank_is_the_nearest_rank_index(percentile, count, index):
    assert rank(percentile, count) == index


@pytest.mark.django_db
def test_the_day_range_counts_per_hour():
    operation(at(11, 0), at(11, 30))
    operation(at(11, 10), at(11, 40), status=Status.FAILED)

    found = series(DAY, NOW)

    eleven = interval_at(found, at(11, 0))
    assert (eleven.completed, eleven.failed, eleven.slots) == (1, 1, 1.0)


@pytest.mark.django_db
def test_the_charts_take_a_few_queries_whatever_the_rows_and_never_read_params_or_result():
    for minute in range(0, 60, 3):
        Operation.objects.create(
            kind="simulated",
            status=Status.COMPLETED,
            params={"secret": "x" * 100},
            result={"big": "y" * 100},
            created_at=at(11, minute),
            started_at=at(11, minute),
            finished_at=at(11, minute, 30),
        )
    operation(at(12, 0), status=Status.RUNNING)

    with CaptureQueriesContext(connection) as captured:
        series(DAY, NOW)

    sql = [query["sql"] for query in captured.captured_queries]
    # Slots (ended, active), outcomes, refusals, the kinds, then p50 and p95 of the one kind.
    assert len(sql) == 7
    assert not any('"params"' in statement or '"result"' in statement for statement in sql)


@pytest.mark.sqlite  # EXPLAIN QUERY PLAN is SQLite's
@pytest.mark.django_db
def test_every_chart_query_reads_a_window_of_an_index_never_the_whole_table():
    operation(at(11, 40), at(11, 41))
    operation(at(11, 58), status=Status.RUNNING)
    refusals.record("rate_limited", at=at(12, 1))

    with CaptureQueriesContext(connection) as captured:
        series(HOUR, NOW)

    for query in captured.captured_queries:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {query['sql']}")
            reads = [row[-1] for row in cursor.fetchall() if "TEMP B-TREE" not in row[-1]]
        assert len(reads) == 1, reads
        assert reads[0].startswith("SEARCH operations_"), reads
        assert "USING INDEX" in reads[0], reads
        assert any(
            bounded in reads[0]
            for bounded in ("(status=? AND created_at<?)", ">? AND finished_at<?)", "minute<?)")
        ), reads


@pytest.mark.django_db
def test_a_percentile_of_rows_deleted_since_they_were_counted_is_the_last_left():
    for seconds in (3, 1, 2):
        operation(at(11, 30), at(11, 30, seconds))
    ordered = Operation.objects.order_by("finished_at").values_list("finished_at", flat=True)

    assert charts.nth_or_last(ordered, 1) == at(11, 30, 2)
    assert charts.nth_or_last(ordered, 18) == at(11, 30, 3)  # counted 20, 3 left
    Operation.objects.all().delete()
    assert charts.nth_or_last(ordered, 0) is None
