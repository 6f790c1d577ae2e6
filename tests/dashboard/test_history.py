"""The dashboard's history: exact counts, filters, pages both ways, refusals, who sees what."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

import dashboard.history
from dashboard.history import COUNT_CAP, PAGE_SIZE, History
from operations.models import Operation, Status

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)
MINE = "ip:127.0.0.1"  # the test client's own client key
THEIRS = "ip:10.0.0.9"
PANEL = "/dashboard/history/"
TABLE = '"operations_operation"'


@pytest.fixture(autouse=True)
def open_to_all(configure):
    configure(allow_anonymous=True, enable_rate_limiting=False)


def seed(statuses: list[str], *, kind: str = "simulated", client_key: str = MINE, **fields):
    """One operation a status, a second apart, oldest first."""
    offset = Operation.objects.count()
    return Operation.objects.bulk_create(
        Operation(
            kind=kind,
            status=status,
            client_key=client_key,
            created_at=START + timedelta(seconds=offset + n),
            **fields,
        )
        for n, status in enumerate(statuses)
    )


def panel(client: Client, query: str = "", status: int = 200) -> History:
    response = client.get(f"{PANEL}{query}")
    assert response.status_code == status, response.content
    return response.context["history"]


def shown_ids(history: History) -> list[str]:
    return [str(row.operation.id) for row in history.rows]


def newest_first(rows: list[Operation]) -> list[str]:
    return [str(row.id) for row in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]


def counts(history: History) -> dict[str, int | None]:
    return {tab.label: tab.count for tab in history.tabs}


# --- The panel on the page ----------------------------------------------------------------


def test_the_page_draws_the_panel_after_the_live_region_not_inside_it(client):
    seed(["completed"])

    page = client.get("/").content.decode()
    live = client.get("/dashboard/live/").content.decode()

    assert page.index('id="live"') < page.index('id="history"')
    assert 'id="history"' not in live
    assert f'hx-get="{PANEL}?status=failed"' in page


def test_the_page_honours_the_panels_query(client):
    seed(["failed", "completed", "failed", "failed"])

    page = client.get("/?status=failed&limit=2")
    fragment = panel(client, "?status=failed&limit=2")

    assert shown_ids(page.context["history"]) == shown_ids(fragment)
    assert len(shown_ids(fragment)) == 2


def test_the_page_leaves_its_own_other_parameters_to_itself(client):
    seed(["failed"])

    history = client.get("/?status=failed&something_else=1").context["history"]

    assert history.problem == ""
    assert len(history.rows) == 1


def test_the_panel_pushes_the_url_of_the_page_that_shows_it(client):
    response = client.get(f"{PANEL}?kind=&client=&id=&status=failed&limit=5")

    assert response["HX-Push-Url"] == "/?status=failed&limit=5"


def test_the_pushed_url_keeps_the_pages_other_parameters_and_drops_the_old_filters(client):
    shown_on = "http://testserver/?charts=day&status=queued&limit=3&cursor=old"

    response = client.get(f"{PANEL}?status=failed", headers={"HX-Current-URL": shown_on})

    assert response["HX-Push-Url"] == "/?charts=day&status=failed"


# --- Tabs and counts ----------------------------------------------------------------------


def test_tabs_count_every_status_and_all(client):
    seed(["running", "queued", "queued", "completed", "failed", "failed", "failed", "cancelled"])

    history = panel(client)

    assert counts(history) == {
        "All": 8,
        "running": 1,
        "queued": 2,
        "waiting": 0,
        "completed": 1,
        "failed": 3,
        "cancelled": 1,
    }


def test_counts_honour_kind_client_and_id_but_not_the_chosen_status(client, report_kind):
    seed(["failed", "failed", "completed"], kind="report")
    seed(["failed", "queued"], kind="report", client_key=THEIRS)
    seed(["failed", "completed", "completed"])

    assert counts(panel(client, "?kind=report&status=completed")) == {
        "All": 5,
        "running": 0,
        "queued": 1,
        "waiting": 0,
        "completed": 1,
        "failed": 3,
        "cancelled": 0,
    }
    assert counts(panel(client, "?kind=report&client=me"))["failed"] == 2
    first = Operation.objects.order_by("created_at").first()
    assert counts(panel(client, f"?id={first.id.hex[:32]}"))["All"] == 1


def test_the_chosen_tab_is_marked_current_and_keeps_the_other_filters(client):
    seed(["failed"])

    response = client.get(f"{PANEL}?kind=simulated&status=failed&limit=5")
    page = response.content.decode()
    tabs = {tab.label: tab for tab in response.context["history"].tabs}

    assert [label for label, tab in tabs.items() if tab.current] == ["failed"]
    assert page.count('aria-current="page"') == 1
    assert 'data-status="failed" aria-current="page"' in page
    assert parse_qs(tabs["queued"].query) == {
        "status": ["queued"],
        "kind": ["simulated"],
        "limit": ["5"],
    }
    assert parse_qs(tabs["All"].query) == {"kind": ["simulated"], "limit": ["5"]}


# --- Filters ------------------------------------------------------------------------------


def test_a_status_tab_shows_exactly_that_status_newest_first(client):
    rows = seed(["failed", "completed", "failed", "queued", "failed"])

    history = panel(client, "?status=failed")

    assert shown_ids(history) == newest_first([row for row in rows if row.status == "failed"])


def test_kind_client_and_id_prefix_filter_the_rows(client, report_kind):
    reports = seed(["completed", "failed"], kind="report")
    theirs = seed(["completed"], client_key=THEIRS)
    seed(["completed"])

    assert shown_ids(panel(client, "?kind=report")) == newest_first(reports)
    assert str(theirs[0].id) not in shown_ids(panel(client, "?client=me"))
    assert shown_ids(panel(client, f"?id={str(reports[1].id)[:13]}")) == [str(reports[1].id)]


def test_the_form_offers_every_known_kind_and_shows_the_chosen_filters(client, report_kind):
    page = client.get(f"{PANEL}?kind=report&client=me&id=3A97&status=failed").content.decode()

    assert '<option value="report" selected>report</option>' in page
    assert '<option value="simulated">simulated</option>' in page
    assert '<option value="me" selected>mine</option>' in page
    assert 'name="id" value="3A97"' in page
    assert '<input type="hidden" name="status" value="failed">' in page
    assert '<label for="history-kind">Kind</label>' in page


@pytest.mark.parametrize(
    ("query", "empty"),
    [
        ("", "No operations yet."),
        ("?status=failed", "No failed operations."),
        ("?kind=simulated", "No operations match these filters."),
    ],
)
def test_an_empty_history_says_so_in_plain_words(client, query, empty):
    page = client.get(f"{PANEL}{query}").content.decode()

    assert f'<p class="empty" data-testid="history-empty">{empty}</p>' in page


# --- Pages --------------------------------------------------------------------------------


def test_pages_go_older_and_back_newer_exactly(client):
    rows = Operation.objects.bulk_create(
        # Three rows an instant, so that pages end inside ties.
        Operation(kind="simulated", status=Status.COMPLETED, created_at=START + timedelta(n // 3))
        for n in range(23)
    )
    forward = [panel(client, "?limit=5")]
    while forward[-1].older:
        forward.append(panel(client, f"?{forward[-1].older}"))
    back = [forward[-1]]
    while back[-1].newer:
        back.append(panel(client, f"?{back[-1].newer}"))

    assert [shown_ids(page) for page in forward] == [
        newest_first(rows)[start : start + 5] for start in range(0, 23, 5)
    ]
    assert [shown_ids(page) for page in reversed(back)] == [shown_ids(page) for page in forward]
    assert (forward[0].newer, forward[-1].older) == ("", "")


def test_a_page_whose_rows_are_gone_says_so_and_leads_back(client):
    rows = seed(["queued"] * 4)
    first = panel(client, "?status=queued&limit=2")
    Operation.objects.filter(pk__in=[row.pk for row in rows[:2]]).update(status=Status.RUNNING)

    second = panel(client, f"?{first.older}")
    back = panel(client, f"?{second.newer}")

    assert (second.rows, second.empty) == ([], "No operations are left on this page.")
    assert (second.older, shown_ids(back)) == ("", shown_ids(first))


def test_pages_keep_the_filters_and_the_limit(client):
    seed(["failed"] * 4 + ["completed"] * 3)

    first = panel(client, "?status=failed&limit=2")
    second = panel(client, f"?{first.older}")

    assert {row.operation.status for row in second.rows} == {"failed"}
    assert parse_qs(first.older)["limit"] == ["2"]
    assert parse_qs(second.newer)["status"] == ["failed"]


def test_the_panel_shows_twenty_rows_a_page_unless_asked(client):
    seed(["completed"] * (PAGE_SIZE + 1))

    assert len(panel(client).rows) == PAGE_SIZE
    assert len(panel(client, "?limit=3").rows) == 3


def test_the_pager_links_work_without_javascript_too(client):
    seed(["completed"] * 3)
    history = panel(client, "?limit=2")

    page = client.get(f"{PANEL}?limit=2").content.decode()

    older = html.escape(history.older)
    assert f'href="/?{older}#history" hx-get="{PANEL}?{older}"' in page
    assert "← Newer" not in page


# --- Refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "?status=done",
        "?kind=nope",
        "?limit=0",
        "?id=xyz",
        "?cursor=garbage",
        "?stauts=failed",
        "?kind=simulated&kind=simulated",
    ],
)
def test_a_bad_filter_answers_400_with_the_apis_own_words_in_the_panel(client, query):
    detail = client.get(f"/api/operations{query}").json()["detail"]

    response = client.get(f"{PANEL}{query}")

    assert response.status_code == 400
    assert response.context["history"].problem == detail
    assert f'data-testid="history-problem">{html.escape(detail)}</p>' in response.content.decode()
    assert "HX-Push-Url" not in response


def test_another_clients_history_is_refused_in_the_panel_to_all_but_staff(
    client, django_user_model
):
    assert "only staff may list" in panel(client, f"?client={THEIRS}", status=403).problem

    staff = django_user_model.objects.create_user("carol", password="x" * 12, is_staff=True)
    client.force_login(staff)
    seed(["failed"], client_key=THEIRS)
    assert len(panel(client, f"?client={THEIRS}").rows) == 1


def test_the_page_with_a_bad_filter_shows_the_reason_and_still_works(client):
    response = client.get("/?status=done")

    assert response.status_code == 200
    assert "status=&#x27;done&#x27; is not a status" in response.content.decode()
    assert 'id="live"' in response.content.decode()


# --- Who sees what ------------------------------------------------------------------------


def test_the_owner_sees_a_failures_reason_and_another_client_only_its_message(client):
    seed(["failed"], error="Vendor refused s3cret-mine.", message="step 2 of 9")
    seed(["failed"], client_key=THEIRS, error="Vendor refused s3cret-theirs.", message="step 1")

    page = client.get(PANEL).content.decode()

    assert '<span class="reason">Vendor refused s3cret-mine.</span>' in page
    assert "s3cret-theirs" not in page
    assert "step 1" in page
    assert THEIRS not in page
    assert page.count(">you<") == 1
    assert page.count("another client") == 1


def test_staff_see_every_reason_and_client_and_may_filter_by_it(client, django_user_model):
    seed(["failed"], client_key=THEIRS, error="Vendor refused s3cret-theirs.")
    client.force_login(django_user_model.objects.create_user("carol", is_staff=True))

    page = client.get(PANEL).content.decode()

    assert "Vendor refused s3cret-theirs." in page
    assert f'href="/?client={THEIRS}#history"' in page


def test_a_long_reason_is_cut_short_in_the_row(client):
    seed(["failed"], error="x" * 1000)

    row = panel(client).rows[0]

    assert row.reason == "x" * 300


def test_rows_lead_to_the_operations_page_with_times_the_browser_shows_relative(client):
    operation = seed(["completed"])[0]
    Operation.objects.filter(pk=operation.pk).update(
        started_at=operation.created_at + timedelta(seconds=1),
        finished_at=operation.created_at + timedelta(seconds=4.5),
    )

    page = client.get(PANEL).content.decode()

    assert f'<a href="/operations/{operation.id}/"' in page
    assert f'<time class="ago" datetime="{operation.created_at.isoformat()}"' in page
    assert '<td class="duration">3.5 s</td>' in page


# --- What it reads ------------------------------------------------------------------------


def operation_selects(client: Client, path: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"].startswith("SELECT") and TABLE in query["sql"]
    ]


@pytest.mark.parametrize("query", ["", "?status=failed", "?kind=simulated&client=me", "?id=0"])
def test_no_read_loads_params_or_result_and_only_shown_reasons_load_error(client, query):
    seed(["failed", "completed"], params={"token": "s3cret"}, result={"r": 1}, error="why")

    selects = operation_selects(client, f"{PANEL}{query}")

    for sql in selects:
        assert f'{TABLE}."params"' not in sql, sql
        assert f'{TABLE}."result"' not in sql, sql
        if f'{TABLE}."error"' in sql:
            assert "SUBSTR" in sql.upper() or "LEFT(" in sql.upper(), sql


def counting(sqls: list[str]) -> list[str]:
    return [sql for sql in sqls if "COUNT(" in sql.upper()]


def test_the_counts_are_one_query_per_status_each_stopping_past_the_cap(client):
    seed(["failed", "completed", "queued"])

    counts_sql = counting(operation_selects(client, PANEL))

    assert len(counts_sql) == 6
    assert all(f"LIMIT {COUNT_CAP + 1}" in sql for sql in counts_sql), counts_sql


def test_a_status_past_the_cap_reads_as_the_cap_and_more(client, monkeypatch):
    monkeypatch.setattr(dashboard.history, "COUNT_CAP", 3)
    seed(["failed"] * 5 + ["completed"] * 2)

    shown = client.get(PANEL).content.decode()

    assert 'data-testid="history-count">3+<' in shown  # failed
    assert 'data-testid="history-count">2<' in shown  # completed
    assert 'data-testid="history-count">5+<' in shown  # all: at least 3 + 2


@pytest.mark.sqlite  # EXPLAIN QUERY PLAN is SQLite's
@pytest.mark.parametrize("query", ["", "?client=me", "?kind=simulated", "?id=0a"])
def test_the_counts_walk_an_index_never_the_table(client, query):
    seed(["failed", "completed", "queued"] * 5)
    seed(["completed"] * 5, client_key=THEIRS)

    for sql in counting(operation_selects(client, f"{PANEL}{query}")):
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            steps = [row[-1] for row in cursor.fetchall()]

        reads = [step for step in steps if "operations_operation" in step]
        assert reads, steps
        assert all("INDEX" in step for step in reads), steps
