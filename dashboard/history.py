"""The dashboard's history: every operation, in status tabs with counts, filtered and paged.

It is the API's listing (api.history) drawn as a panel: the same query parameters,
refused in the same words, and the same signed keyset cursors. "Older" leads past
the last row shown and "Newer" before the first, so going back shows the rows that
were shown, however many operations start meanwhile, and a page's URL is a whole
description of it: shared, bookmarked or reloaded, it shows that page. The page `/`
draws the panel from its own query string; `GET /dashboard/history/` answers the
panel alone, for htmx, with the URL of the page that shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.db.models.functions import Left
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import push_url

from api.clients import client_key, may_control
from api.history import (
    MINE,
    PARAMETERS,
    Filters,
    Listing,
    listing_of,
    matching_operations,
    page_of,
)
from api.pipeline import allow_methods, read_limited, signed_in
from dashboard.detail import between, duration_text
from operations.exceptions import Forbidden, InvalidRequest
from operations.kinds import known_kinds
from operations.models import Operation, Status

PAGE_SIZE = 20
# A tab counts its operations up to this, then says "1000+".
COUNT_CAP = 1000
TAB_STATUSES = (
    Status.RUNNING,
    Status.QUEUED,
    Status.WAITING,
    Status.COMPLETED,
    Status.FAILED,
    Status.CANCELLED,
)
# A failure's reason as a row shows it; the operation's own page shows it whole.
REASON_CHARACTERS = 300
# What the form shows again of a value it could not use.
SHOWN_CHARACTERS = 100


@dataclass(frozen=True)
class Tab:
    label: str
    status: str  # "" for every status
    query: str
    count: int | None = None  # None when the filters were refused
    current: bool = False
    more: bool = False  # more than `count`: a status past COUNT_CAP


@dataclass(frozen=True)
class Row:
    operation: Operation
    duration: str
    reason: str = ""  # the error, to those who may see it (api.clients.may_control)
    client: str = ""  # "you", a client key (to staff), or "" for another client
    client_query: str = ""  # staff: the query of that client's history


@dataclass
class History:
    """What the panel shows; its queries are query strings of the page `/`."""

    tabs: list[Tab]
    form: dict[str, str]  # the filter form's values: status, limit, kind, client, id
    clients: list[tuple[str, str]]  # the client filter's choices
    kinds: list[str] = field(default_factory=known_kinds)
    rows: list[Row] = field(default_factory=list)
    query: str = ""
    newer: str = ""
    older: str = ""
    empty: str = ""
    problem: str = ""
    status: int = 200


def history_of(request: HttpRequest, query: QueryDict) -> History:
    """The panel for the history parameters in `query`; a refused one is shown, not raised."""
    try:
        listing = listing_of(request, query)
    except (InvalidRequest, Forbidden) as exc:
        return refused(query, exc)
    if not listing.limit_given:
        listing = replace(listing, limit=PAGE_SIZE)
    page = page_of(request, listing)
    filters = listing.filters
    form = {name: value for name, value in listing.parameters() if name != "id"}
    form["id"] = query.get("id", "")  # as typed: with or without the id's hyphens
    return History(
        tabs=tabs_of(listing, status_counts(request, filters)),
        form=form,
        clients=client_choices(filters.client),
        rows=rows_of(request, page.operations),
        query=urlencode([*page.parameters, *cursor_given(query)], safe=",:"),
        newer=page.query(page.newer) if page.newer else "",
        older=page.query(page.older) if page.older else "",
        empty="" if page.operations else empty_text(filters, paged=bool(query.get("cursor"))),
    )


def refused(query: QueryDict, exc: InvalidRequest | Forbidden) -> History:
    """The panel for filters that were refused: the reason, and the form to mend them."""
    # The fields as sent, to mend; no hidden status or limit, which may be what was refused.
    form = {name: query.get(name, "")[:SHOWN_CHARACTERS] for name in ("kind", "client", "id")}
    tabs = [
        Tab(label, status, urlencode({"status": status} if status else {}))
        for label, status in tab_names()
    ]
    return History(
        tabs=tabs,
        form=form,
        clients=client_choices(form["client"]),
        problem=str(exc),
        status=exc.status,
    )


def tab_names() -> list[tuple[str, str]]:
    return [("All", ""), *((status.value, status.value) for status in TAB_STATUSES)]


def tabs_of(listing: Listing, counts: dict[str, int]) -> list[Tab]:
    """A tab for every status and one for all, each keeping the other filters and the limit."""
    others = [(name, value) for name, value in listing.parameters() if name != "status"]
    tabs = []
    for label, status in tab_names():
        query = urlencode([("status", status), *others] if status else others, safe=",:")
        counted = [counts.get(status, 0)] if status else list(counts.values())
        count = sum(min(number, COUNT_CAP) for number in counted)
        more = any(number > COUNT_CAP for number in counted)  # shown as "1000+"
        current = listing.filters.statuses == ((status,) if status else ())
        tabs.append(Tab(label, status, query, count, current, more))
    return tabs


def status_counts(request: HttpRequest, filters: Filters) -> dict[str, int]:
    """How many operations each status has under the other filters, up to COUNT_CAP + 1.

    One small query per status, each through (status, created_at)'s index and
    stopping after COUNT_CAP + 1 entries: the tabs cost the same with 100 operations
    as with 100,000 (a count of the whole history would walk all of it), and a tab
    past the cap reads "1000+". Never a row's params or result.
    """
    every_status = Listing(replace(filters, statuses=()))
    found = matching_operations(request, every_status).order_by()
    return {
        status.value: found.filter(status=status)[: COUNT_CAP + 1].count()
        for status in TAB_STATUSES
    }


def client_choices(chosen: str) -> list[tuple[str, str]]:
    """Anyone's or mine; a client key only as chosen (staff reach one from a row)."""
    choices = [("", "anyone"), (MINE, "mine")]
    return choices + ([(chosen, chosen)] if chosen not in ("", MINE) else [])


def rows_of(request: HttpRequest, operations: list[Operation]) -> list[Row]:
    """The rows, each with what this client may see of it."""
    mine = client_key(request)
    user = request.user
    staff = user.is_authenticated and user.is_staff
    visible = [operation.pk for operation in operations if may_control(request, operation)]
    reasons = (
        dict(
            Operation.objects.filter(pk__in=visible)
            .exclude(error="")
            .values_list("pk", Left("error", REASON_CHARACTERS))
        )
        if visible
        else {}
    )
    now = timezone.now()
    rows = []
    for operation in operations:
        own = operation.client_key == mine or (
            user.is_authenticated and operation.user_id == user.pk
        )
        client, client_query = ("you" if own else ""), ""
        if staff and not own and operation.client_key:
            client = operation.client_key
            client_query = urlencode({"client": client}, safe=":")
        duration = duration_text(between(operation.started_at, operation.finished_at, now))
        rows.append(Row(operation, duration, reasons.get(operation.pk, ""), client, client_query))
    return rows


def empty_text(filters: Filters, *, paged: bool) -> str:
    """Why no row shows, in plain words."""
    if paged:  # its rows changed status or were removed since the link was made
        return "No operations are left on this page."
    if filters.kind or filters.client or filters.id_prefix:
        return "No operations match these filters."
    if filters.statuses:
        return f"No {' or '.join(filters.statuses)} operations."
    return "No operations yet."


def cursor_given(query: QueryDict) -> list[tuple[str, str]]:
    cursor = query.get("cursor", "")
    return [("cursor", cursor)] if cursor else []


def page_url(request: HttpRequest, history: History) -> str:
    """The URL of the page `/` showing `history`, keeping the page's other parameters (`charts`)."""
    shown_on = urlsplit(request.headers.get("HX-Current-URL", ""))
    kept = [(name, value) for name, value in parse_qsl(shown_on.query) if name not in PARAMETERS]
    query = "&".join(part for part in (urlencode(kept), history.query) if part)
    return reverse("dashboard") + (f"?{query}" if query else "")


def page_history(request: HttpRequest) -> dict[str, History]:
    """The panel as the page `/` draws it, from the history's parameters in the page's query.

    The page's other parameters (`retry_of`) are its own, not a misspelt filter.
    """
    query = request.GET.copy()
    for name in set(query) - set(PARAMETERS):
        del query[name]
    return {"history": history_of(request, query)}


@allow_methods("GET")
@signed_in
@read_limited
def history(request: HttpRequest) -> HttpResponse:
    """The history panel alone, for htmx; a refused filter answers its status, its reason shown."""
    shown = history_of(request, request.GET)
    response = render(request, "dashboard/history.html", {"history": shown}, status=shown.status)
    if shown.status == 200:
        push_url(response, page_url(request, shown))  # to share, reload or go back to
    return response
