"""The API's history: filters return exactly the matching rows, cursors walk them once each."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from api.cursors import CURSOR_SALT
from api.history import DEFAULT_LIMIT
from api.schema import DESCRIPTION
from operations.models import Operation, Status

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)
ANONYMOUS = "ip:127.0.0.1"  # the test client's address, as api.clients.client_key keys it
# A row of the list has exactly the fields the OpenAPI description gives a summary.
SUMMARY_FIELDS = set(
    yaml.safe_load(DESCRIPTION.read_text())["components"]["schemas"]["OperationSummary"]["required"]
)
STATUSES = list(Status)


@pytest.fixture(autouse=True)
def open_to_all(configure):
    configure(allow_anonymous=True, enable_rate_limiting=False)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def seed(count: int, *, same_instant_every: int = 1, **fields: object) -> list[Operation]:
    """`count` operations, oldest first; every `same_instant_every` of them share a created_at."""
    rows = [
        Operation(
            created_at=at(n // same_instant_every),
            status=STATUSES[n % len(STATUSES)],
            kind="simulated",
            **fields,
        )
        for n in range(count)
    ]
    return Operation.objects.bulk_create(rows)


def newest_first(rows: list[Operation]) -> list[str]:
    return [str(row.id) for row in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]


def listed(client: Client, query: str = "", **extra: str) -> dict:
    response = client.get(f"/api/operations{query}", **extra)
    assert response.status_code == 200, response.content
    return response.json()


def ids(body: dict) -> list[str]:
    return [row["id"] for row in body["operations"]]


def walk(client: Client, first: str, between=None) -> tuple[list[str], int]:
    """Follow `next` from `first` to the end; return every id seen, in order, and the pages."""
    seen, url, pages = [], first, 0
    while url:
        body = listed(client, url.removeprefix("/api/operations"))
        seen += ids(body)
        pages += 1
        url = body["next"]
        if between and url:
            between()
    return seen, pages


def refusal(client: Client, query: str) -> dict:
    response = client.get(f"/api/operations{query}")
    assert response.status_code == 400, response.content
    return response.json()


def signed_in(django_user_model, name: str, **flags: bool) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_user(name, password="x" * 12, **flags))
    return client


# --- The default answer --------------------------------------------------------------------


def test_without_parameters_the_answer_is_the_50_newest_summaries_as_before(client):
    rows = seed(60)

    body = listed(client)

    assert ids(body) == newest_first(rows)[:DEFAULT_LIMIT]
    assert all(set(row) == SUMMARY_FIELDS for row in body["operations"])
    assert set(body) == {"operations", "next", "prev"}
    assert body["next"] is not None


def test_a_history_that_fits_one_page_has_no_next(client):
    rows = seed(3)

    body = listed(client)

    assert (ids(body), body["next"]) == (newest_first(rows), None)


def test_empty_parameters_count_as_absent(client):
    rows = seed(5)

    body = listed(client, "?status=&kind=&client=&id=&limit=&cursor=")

    assert (ids(body), body["next"]) == (newest_first(rows), None)


# --- Filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "statuses"),
    [
        ("?status=failed", {"failed"}),
        ("?status=running", {"running"}),
        ("?status=failed,cancelled", {"failed", "cancelled"}),
        ("?status=failed&status=queued", {"failed", "queued"}),
        ("?status=completed,completed", {"completed"}),
        ("?status=" + ",".join(Status.values), set(Status.values)),
    ],
)
def test_a_status_filter_returns_exactly_the_operations_in_those_statuses(client, query, statuses):
    rows = seed(40, same_instant_every=3)

    body = listed(client, query + "&limit=100")

    assert ids(body) == newest_first([row for row in rows if row.status in statuses])


def test_a_kind_filter_returns_exactly_that_kinds_operations(client, report_kind):
    simulated = seed(6)
    reports = [Operation.objects.create(kind=report_kind, created_at=at(n + 0.5)) for n in range(4)]

    assert ids(listed(client, "?kind=report")) == newest_first(reports)
    assert ids(listed(client, "?kind=simulated")) == newest_first(simulated)


def test_client_me_is_the_callers_own_operations_by_user_or_by_address(django_user_model):
    ada = signed_in(django_user_model, "ada")
    ada_id = django_user_model.objects.get(username="ada").pk
    hers = seed(3, client_key=f"user:{ada_id}")
    anonymous = seed(2, client_key=ANONYMOUS)
    seed(2, client_key="user:999")

    assert ids(listed(ada, "?client=me")) == newest_first(hers)
    assert ids(listed(ada, f"?client=user:{ada_id}")) == newest_first(hers)
    assert ids(listed(Client(), "?client=me")) == newest_first(anonymous)
    assert ids(listed(Client(), f"?client={ANONYMOUS}")) == newest_first(anonymous)


def test_staff_may_list_any_clients_operations(django_user_model):
    staff = signed_in(django_user_model, "carol", is_staff=True)
    theirs = seed(3, client_key="user:999")
    seed(2, client_key=ANONYMOUS)

    assert ids(listed(staff, "?client=user:999")) == newest_first(theirs)


@pytest.mark.parametrize("other", ["user:999", "ip:192.0.2.1", "ip:2001:db8::/64"])
def test_another_client_is_forbidden_to_all_but_staff(django_user_model, other):
    seed(2, client_key=other)
    ada = signed_in(django_user_model, "ada")

    for caller in (ada, Client()):
        response = caller.get(f"/api/operations?client={other}")
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        assert f"client='{other}'" in response.json()["detail"]


def test_an_id_prefix_returns_exactly_the_operations_whose_id_starts_with_it(client):
    rows = [
        Operation(
            kind="simulated", created_at=at(n), id=uuid.UUID(hex=f"{prefix}{n:02x}".ljust(32, "0"))
        )
        for n, prefix in enumerate(["3a97", "3a97", "3a98", "3a9", "ffff", "0000"])
    ]
    Operation.objects.bulk_create(rows)
    full = str(rows[0].id)

    assert ids(listed(client, "?id=3a97")) == newest_first(rows[:2])
    assert ids(listed(client, "?id=3A9")) == newest_first(rows[:4])
    assert ids(listed(client, "?id=ffff")) == [str(rows[4].id)]
    assert ids(listed(client, f"?id={full}")) == [full]
    assert ids(listed(client, f"?id={full[:13]}")) == [full]  # with the id's hyphen
    assert ids(listed(client, f"?id={rows[0].id.hex}")) == [full]
    assert ids(listed(client, "?id=abc")) == []


def test_filters_combine(client, report_kind):
    rows = seed(30, client_key=ANONYMOUS) + seed(30, client_key="user:999")
    Operation.objects.bulk_create(
        Operation(kind=report_kind, created_at=at(n), status=Status.FAILED, client_key=ANONYMOUS)
        for n in range(5)
    )
    expected = [
        row for row in rows if row.status in {"failed", "cancelled"} and row.client_key == ANONYMOUS
    ]

    body = listed(client, "?status=failed,cancelled&kind=simulated&client=me&limit=100")

    assert ids(body) == newest_first(expected)


def test_summaries_never_carry_params_result_or_error_whatever_the_filter(django_user_model):
    staff = signed_in(django_user_model, "carol", is_staff=True)
    seed(3, client_key="user:999", params={"token": "s3cret"}, error="s3cret failed")

    response = staff.get("/api/operations?client=user:999&status=queued,failed")

    assert "s3cret" not in response.content.decode()
    assert all(set(row) == SUMMARY_FIELDS for row in response.json()["operations"])


# --- Pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3, 7, 50, 100])
@pytest.mark.parametrize(
    "query", ["", "status=completed", "status=queued,failed,cancelled", "kind=simulated"]
)
def test_pages_walk_the_whole_history_once_newest_first_and_end_with_no_next(client, limit, query):
    # Rows created in the same microsecond, four at a time, so that pages end inside ties.
    rows = seed(103, same_instant_every=4)
    statuses = set(parse_qs(query).get("status", [",".join(Status.values)])[0].split(","))
    expected = newest_first([row for row in rows if row.status in statuses])
    first = "&".join(part for part in (query, f"limit={limit}") if part)

    seen, pages = walk(client, f"/api/operations?{first}")

    assert seen == expected
    assert pages == max(1, -(-len(expected) // limit))


def pages_forward(client: Client, first: str) -> list[dict]:
    """Every page from `first` to the end, following `next`."""
    bodies, url = [], first
    while url:
        bodies.append(listed(client, url.removeprefix("/api/operations")))
        url = bodies[-1]["next"]
    return bodies


@pytest.mark.parametrize("limit", [1, 3, 7])
@pytest.mark.parametrize(
    "query", ["", "status=completed", "status=queued,failed", "kind=simulated"]
)
def test_prev_walks_back_over_exactly_the_pages_next_walked(client, limit, query):
    seed(40, same_instant_every=4)  # pages end inside ties both ways
    first = "&".join(part for part in (query, f"limit={limit}") if part)
    forward = pages_forward(client, f"/api/operations?{first}")

    back, url = [], forward[-1]["prev"]
    while url:
        back.append(listed(client, url.removeprefix("/api/operations")))
        url = back[-1]["prev"]

    assert [ids(body) for body in reversed(back)] == [ids(body) for body in forward[:-1]]
    assert forward[0]["prev"] is None
    assert all(body["next"] and body["prev"] for body in forward[1:-1])


def test_a_page_reached_by_prev_leads_on_by_next_as_before(client):
    seed(20)
    forward = pages_forward(client, "/api/operations?limit=4")

    second = listed(client, forward[2]["prev"].removeprefix("/api/operations"))
    third = listed(client, second["next"].removeprefix("/api/operations"))

    assert (ids(second), ids(third)) == (ids(forward[1]), ids(forward[2]))


def test_operations_started_while_paging_back_wait_on_a_newer_page_of_their_own(client):
    rows = seed(8)
    forward = pages_forward(client, "/api/operations?limit=4")
    started = Operation.objects.bulk_create(Operation(kind="simulated") for _ in range(2))

    back = listed(client, forward[1]["prev"].removeprefix("/api/operations"))
    newest = listed(client, back["prev"].removeprefix("/api/operations"))

    assert ids(back) == newest_first(rows)[:4]
    assert (ids(newest), newest["prev"]) == (newest_first(started), None)


def test_prev_with_nothing_newer_answers_the_first_page(client):
    rows = seed(6)
    forward = pages_forward(client, "/api/operations?limit=4")
    newer = listed(client, forward[1]["prev"].removeprefix("/api/operations"))
    Operation.objects.filter(id__in=ids(newer)).delete()

    again = listed(client, forward[1]["prev"].removeprefix("/api/operations"))

    assert ids(again) == newest_first(rows)[4:]
    assert again["prev"] is None


def test_an_emptied_page_leads_back_from_the_row_its_cursor_holds(client):
    rows = seed(8)
    forward = pages_forward(client, "/api/operations?limit=4")
    Operation.objects.filter(id__in=ids(forward[1])).delete()

    emptied = listed(client, forward[0]["next"].removeprefix("/api/operations"))
    back = listed(client, emptied["prev"].removeprefix("/api/operations"))

    assert (emptied["operations"], emptied["next"]) == ([], None)
    assert (ids(back), back["prev"]) == (newest_first(rows)[:4], None)


def test_next_keeps_the_filters_and_the_limit(client):
    seed(20)

    body = listed(client, "?status=failed,queued&limit=2")
    query = parse_qs(urlsplit(body["next"]).query)

    assert urlsplit(body["next"]).path == "/api/operations"
    assert {name: values for name, values in query.items() if name != "cursor"} == {
        "status": ["queued,failed"],
        "limit": ["2"],
    }


def test_operations_started_between_pages_never_show_a_row_twice_or_skip_one(client):
    rows = seed(40, same_instant_every=2)

    def start_some() -> None:
        Operation.objects.bulk_create(Operation(kind="simulated") for _ in range(3))

    seen, _ = walk(client, "/api/operations?limit=6", between=start_some)

    assert seen == newest_first(rows)
    assert Operation.objects.count() == 40 + 3 * 6


@pytest.mark.django_db(transaction=True)
def test_operations_started_by_another_thread_while_paging_never_disturb_the_walk():
    rows = seed(60, same_instant_every=3)
    stop, started = threading.Event(), threading.Event()
    inserted = []

    def keep_starting() -> None:
        try:
            while not stop.is_set():
                inserted.append(Operation.objects.create(kind="simulated", status=Status.QUEUED))
                started.set()
                time.sleep(0.002)
        finally:
            connection.close()

    inserter = threading.Thread(target=keep_starting)
    inserter.start()
    try:
        assert started.wait(10)
        seen, _ = walk(Client(), "/api/operations?limit=4", between=lambda: time.sleep(0.005))
    finally:
        stop.set()
        inserter.join()

    existing = newest_first(rows)
    assert len(seen) == len(set(seen))
    assert [seen_id for seen_id in seen if seen_id in set(existing)] == existing
    assert len(inserted) > 10


# --- Refusals -----------------------------------------------------------------------------


def real_cursor(client: Client, query: str = "?limit=1") -> str:
    return parse_qs(urlsplit(listed(client, query)["next"]).query)["cursor"][0]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("?status=done", "status='done'"),
        ("?status=completed,done", "status='done'"),
        ("?status=Completed", "status='Completed'"),
        ("?kind=nope", "kind='nope'"),
        ("?limit=0", "limit='0'"),
        ("?limit=101", "limit='101'"),
        ("?limit=abc", "limit='abc'"),
        ("?limit=-1", "limit='-1'"),
        ("?limit=1.5", "limit='1.5'"),
        ("?limit=%2B5", "limit='+5'"),
        ("?limit=+5", "limit=' 5'"),
        ("?id=xyz", "id='xyz'"),
        ("?id=" + "a" * 33, "id='" + "a" * 33 + "'"),
        ("?id=3a9-7", "id='3a9-7'"),
        ("?client=somebody", "client='somebody'"),
        ("?cursor=garbage", "cursor='garbage'"),
        ("?stauts=failed", "'stauts'"),
        ("?kind=simulated&kind=simulated", "kind was given 2 times"),
        ("?limit=5&limit=6", "limit was given 2 times"),
    ],
)
def test_every_bad_value_is_a_400_naming_the_parameter(client, query, named):
    seed(3)

    body = refusal(client, query)

    assert body["error"] == "invalid_request"
    assert named in body["detail"]


def test_an_unknown_kind_names_the_known_ones(client, report_kind):
    assert "known kinds: report, simulated." in refusal(client, "?kind=nope")["detail"]


@pytest.mark.parametrize("position", [0, 10, -1, -5])
def test_a_tampered_cursor_is_a_400_never_a_500(client, position):
    seed(5)
    cursor = real_cursor(client)
    changed = "A" if cursor[position] != "A" else "B"
    tampered = cursor[:position] + changed + (cursor[position + 1 :] if position != -1 else "")

    body = refusal(client, f"?limit=1&cursor={tampered}")

    assert body["error"] == "invalid_request"
    assert "cursor=" in body["detail"]


def test_a_cursor_signed_for_something_else_is_refused(client):
    from django.core import signing

    seed(5)
    other = signing.Signer(salt="another.purpose").sign_object([0, uuid.uuid4().hex, "x"])
    crafted = signing.Signer(salt=CURSOR_SALT).sign_object(["not", "a", "position"])

    assert refusal(client, f"?cursor={other}")["error"] == "invalid_request"
    assert refusal(client, f"?cursor={crafted}")["error"] == "invalid_request"


def test_a_cursor_from_another_filter_is_refused(client):
    seed(10)
    cursor = real_cursor(client, "?status=queued&limit=1")

    body = refusal(client, f"?status=failed&limit=1&cursor={cursor}")

    assert "other filters" in body["detail"]
    assert listed(client, f"?status=queued&limit=5&cursor={cursor}")["operations"]


# --- HEAD, OPTIONS and the indexes --------------------------------------------------------


def test_head_and_options_keep_working_with_filters(client):
    seed(3)

    head = client.head("/api/operations?status=failed&limit=2")
    options = client.options("/api/operations?status=nonsense")

    assert (head.status_code, head.content) == (200, b"")
    assert options.status_code == 200
    assert client.head("/api/operations?limit=0").status_code == 400


def query_plans(client: Client, query: str) -> list[list[str]]:
    with CaptureQueriesContext(connection) as captured:
        listed(client, query)
    plans = []
    for executed in captured.captured_queries:
        if executed["sql"].startswith("SELECT") and '"operations_operation"' in executed["sql"]:
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN QUERY PLAN {executed['sql']}")
                plans.append([row[-1] for row in cursor.fetchall()])
    assert plans
    return plans


@pytest.mark.sqlite  # EXPLAIN QUERY PLAN is SQLite's
@pytest.mark.parametrize(
    "query",
    [
        "?limit=3",
        "?limit=3&status=completed",
        "?limit=3&status=completed,failed,cancelled",
        "?limit=3&status=failed,queued",
        "?limit=3&kind=simulated",
        "?limit=3&kind=simulated&status=failed",
        "?limit=3&client=me",
    ],
)
def test_each_page_is_read_through_an_index_and_never_sorted(client, query):
    seed(60, client_key=ANONYMOUS)
    cursor = real_cursor(client, query)
    following = listed(client, f"{query}&cursor={cursor}")["prev"]
    back = parse_qs(urlsplit(following).query)["cursor"][0]

    for page in (query, f"{query}&cursor={cursor}", f"{query}&cursor={back}"):
        for steps in query_plans(client, page):
            assert not any("TEMP B-TREE" in step for step in steps), (page, steps)
            assert all("INDEX" in step for step in steps if "operations_operation" in step), steps
