"""The charts as drawn: bars in each viewBox, the figures in words, and the panel over HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from monitoring.charts import RANGES, Interval, KindDurations, Series
from monitoring.drawing import (
    MIN_VISIBLE,
    Rect,
    chart_context,
    drawn,
    level,
    number_words,
    row_bar,
    seconds_words,
    stacked_column,
)
from operations import refusals
from operations.models import Operation, Status

START = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)


def made_series(*figures: tuple[float, int, int, int], durations=()) -> Series:
    """A series of five-minute intervals from START with (slots, completed, failed, refused)."""
    width = timedelta(minutes=5)
    intervals = [
        Interval(START + n * width, START + (n + 1) * width, *values)
        for n, values in enumerate(figures)
    ]
    return Series(
        range=RANGES["hour"],
        now=intervals[-1].start + timedelta(minutes=1),
        slot_limit=4,
        intervals=intervals,
        refused_by_reason={"concurrency_limit": 2, "rate_limited": 1} if figures else {},
        durations=list(durations),
    )


def test_a_column_stacks_its_parts_from_the_bottom_in_order():
    rects = stacked_column(2, [("completed", 2), ("failed", 1), ("refused", 0)], top=4)

    assert rects == [
        Rect("completed", 21.0, 50.0, 8, 50.0),
        Rect("failed", 21.0, 25.0, 8, 25.0),
    ]


def test_a_value_above_zero_always_shows_and_zero_draws_nothing():
    assert stacked_column(0, [("failed", 1)], top=1000)[0].height == MIN_VISIBLE
    assert stacked_column(0, [("failed", 0)], top=1000) == []


def test_lines_and_rows_sit_on_their_scale():
    assert level(4, 4) == 0.0
    assert level(2, 8) == 75.0
    assert row_bar(1, "p95", 5, top=10, inset=1.5) == Rect("p95", 0, 11.5, 50.0, 7.0)
    assert row_bar(0, "p50", 0, top=10, inset=3) is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0.25, "250 ms"), (2.44, "2.4 s"), (210, "3.5 min"), (4320, "72.0 min"), (7200, "2.0 h")],
)
def test_durations_read_in_the_unit_people_use(seconds, words):
    assert seconds_words(seconds) == words


@pytest.mark.parametrize(("value", "words"), [(3, "3"), (3.0, "3"), (2.5, "2.5"), (0.25, "0.25")])
def test_figures_leave_out_a_needless_decimal(value, words):
    assert number_words(value) == words


def test_scales_reach_the_slot_limit_and_the_busiest_interval():
    charts = drawn(made_series((1.0, 0, 0, 0), (5.5, 3, 2, 1)))

    assert (charts.slots_top, charts.outcomes_top) == (5.5, 6)
    assert charts.limit_y == level(4, 5.5)
    assert [column.current for column in charts.columns] == [False, True]
    assert charts.ticks == [START, START + timedelta(minutes=5), START + timedelta(minutes=10)]


def test_each_chart_says_its_figures_in_a_sentence():
    simulated = KindDurations("simulated", 12, 2.0, 2.44)
    charts = drawn(made_series((1.0, 2, 0, 0), (0.5, 1, 1, 3), durations=[simulated]))

    assert charts.slots_sentence == (
        "Slots in use over the last hour, averaged per 5 minutes: 0.75 on average, "
        "at most 1 (the 5 minutes from 11:00), of 4 slots."
    )
    assert charts.outcomes_sentence == (
        "Over the last hour: 3 completed, 1 failed and 3 refused "
        "(2 with all slots busy, 1 past a rate limit); at most 5 in any 5 minutes."
    )
    assert charts.durations_sentence == (
        "Run times of the operations completed in the last hour. "
        "simulated: p50 2.0 s, p95 2.4 s (12 operations)."
    )


def test_without_completed_operations_the_durations_say_so():
    assert drawn(made_series((0.0, 0, 0, 0))).durations_sentence == (
        "No operation completed in the last hour."
    )


# --- The panel over HTTP ------------------------------------------------------------------


@pytest.fixture
def anyone(configure):
    configure(allow_anonymous=True, enable_rate_limiting=False)


def finished(minutes_ago: float, status: Status, seconds: float = 2) -> Operation:
    ended = timezone.now() - timedelta(minutes=minutes_ago)
    return Operation.objects.create(
        kind="simulated",
        status=status,
        created_at=ended - timedelta(seconds=seconds),
        started_at=ended - timedelta(seconds=seconds),
        finished_at=ended,
    )


def data_of(html: str, chart: str, name: str) -> list[str]:
    """The `data-<name>` of each interval of the chart whose data-testid is `chart`."""
    svg = re.search(rf'<svg[^>]*data-testid="{chart}".*?</svg>', html, re.S)
    assert svg, html
    return re.findall(rf'<g class="interval"[^>]* data-{name}="([^"]*)"', svg.group(0))


@pytest.mark.django_db
@pytest.mark.usefixtures("anyone")
def test_the_panel_draws_what_just_happened_in_the_current_interval(client):
    finished(0, Status.FAILED)
    finished(0, Status.COMPLETED)
    refusals.record("rate_limited")

    response = client.get("/dashboard/charts/?range=hour")

    html = response.content.decode()
    assert response.status_code == 200
    assert '<section id="charts" class="panel charts"' in html
    assert 'data-range="hour"' in html
    assert data_of(html, "outcomes-chart", "failed")[-1] == "1"
    assert data_of(html, "outcomes-chart", "completed")[-1] == "1"
    assert data_of(html, "outcomes-chart", "refused")[-1] == "1"
    assert re.search(r'data-current="true">\s*<rect class="series-completed"', html)
    assert '<rect class="series-failed"' in html
    assert 'style="' not in html  # the CSP allows no inline style


@pytest.mark.django_db
@pytest.mark.usefixtures("anyone")
def test_every_chart_has_a_name_a_description_and_a_table(client):
    finished(3, Status.COMPLETED)

    html = client.get("/dashboard/charts/?range=day").content.decode()

    for chart in ("slots", "outcomes", "durations"):
        assert f'aria-labelledby="chart-{chart}-title"' in html
        assert f'<title id="chart-{chart}-title">' in html
        assert f'<desc id="chart-{chart}-desc">' in html
    assert len(data_of(html, "slots-chart", "slots")) == 24
    assert html.count('<table class="figures">') == 2
    assert 'aria-current="true">Last day</a>' in html


@pytest.mark.django_db
@pytest.mark.usefixtures("anyone")
def test_an_unknown_range_is_a_400_that_says_which_ranges_there_are(client):
    response = client.get("/dashboard/charts/?range=week")

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "detail": "range='week' is not a chart range; use hour or day.",
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("anyone")
def test_the_dashboard_loads_the_charts_after_the_live_region_and_links_work_without_script(
    client,
):
    page = client.get("/").content.decode()
    hour = client.get("/?charts=hour").content.decode()
    day = client.get("/?charts=day").content.decode()

    # The page asks for the charts once it is up, and links to them without script.
    assert page.index('id="live"') < page.index('id="charts"')
    assert 'hx-get="/dashboard/charts/?range=hour" hx-trigger="load"' in page
    assert 'href="/?charts=hour#charts"' in page
    assert "<svg" not in page
    assert 'data-range="hour"' in hour
    assert 'href="/?charts=day#charts"' in hour
    assert 'hx-get="/dashboard/charts/?range=day"' in hour
    assert 'data-range="day"' in day
    bogus = client.get("/?charts=week")
    assert bogus.status_code == 200  # the page, asking for the last hour's charts
    assert 'hx-get="/dashboard/charts/?range=hour" hx-trigger="load"' in bogus.content.decode()


@pytest.mark.django_db
def test_the_panel_is_for_signed_in_clients_and_counts_as_a_read(client, configure):
    configure(allow_anonymous=False)
    assert client.get("/dashboard/charts/").status_code == 302

    configure(allow_anonymous=True, enable_rate_limiting=True, read_requests_per_minute=1)
    assert client.get("/dashboard/charts/").status_code == 200
    assert client.get("/dashboard/charts/").status_code == 429


def test_the_context_is_drawn_from_the_range_it_names(db):
    assert chart_context("day")["charts"].range is RANGES["day"]
