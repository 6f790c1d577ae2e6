"""The history the API lists: its filters, and pages that a signed cursor continues.

`GET /api/operations` takes `status`, `kind`, `client`, `id` (a prefix), `limit` and
`cursor`. `listing_of` reads them, refusing a bad or unknown one by name; `page_of`
reads one page, newest first by (created_at, id), and the cursors of the pages beside it.

Pages are keyset pages: a cursor holds the (created_at, id) of a row shown, and the
next page is the matching rows strictly older than the last one, the previous page
those strictly newer than the first. An operation started while a client pages is
newer than every cursor it holds, so it never pushes an older row onto a page
already read or past one not yet read. The cursor is signed, and bound to the
filters it was made for (api.cursors): a client cannot craft one or move it to
another list.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import takewhile
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict
from django.urls import reverse

from api.clients import client_key
from api.cursors import Position, cursor_of, cursor_position
from api.shapes import UNSUMMARISED_FIELDS
from operations.exceptions import Forbidden, InvalidRequest
from operations.kinds import known_kinds
from operations.models import Operation, Status

PARAMETERS = ("status", "kind", "client", "id", "limit", "cursor")
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MINE = "me"
LIMIT_PATTERN = re.compile(r"[0-9]{1,3}")
# A client key as api.clients.client_key makes them: a user, an address or network, a digest.
CLIENT_KEY_PATTERN = re.compile(
    r"user:[0-9]{1,20}|ip:[0-9A-Fa-f.:]{2,45}(/[0-9]{1,3})?|unparseable:[0-9a-f]{16}"
)
# An operation id as it is written, 8-4-4-4-12 hexadecimal digits.
ID_SHAPE = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
HEX_DIGITS = "0123456789abcdef"
SHOWN_CHARACTERS = 40


@dataclass(frozen=True)
class Filters:
    """Which operations a listing shows; empty means any."""

    statuses: tuple[str, ...] = ()
    kind: str = ""
    client: str = ""  # "me", or a client key (staff, or the caller's own)
    id_prefix: str = ""  # lower-case hexadecimal digits, without hyphens

    def as_parameters(self) -> list[tuple[str, str]]:
        given = [
            ("status", ",".join(self.statuses)),
            ("kind", self.kind),
            ("client", self.client),
            ("id", self.id_prefix),
        ]
        return [(name, value) for name, value in given if value]

    def fingerprint(self) -> str:
        """A short digest of these filters, which binds a cursor to them."""
        encoded = json.dumps(self.as_parameters()).encode()
        return hashlib.blake2b(encoded, digest_size=6).hexdigest()


@dataclass(frozen=True)
class Listing:
    """One request for a page of the history."""

    filters: Filters
    limit: int = DEFAULT_LIMIT
    limit_given: bool = False
    after: Position | None = None  # the rows older than this one
    before: Position | None = None  # the rows newer than this one

    def parameters(self) -> list[tuple[str, str]]:
        """The filters and the limit as the query gave them: what a link to a page keeps."""
        limit = [("limit", str(self.limit))] if self.limit_given else []
        return self.filters.as_parameters() + limit


@dataclass(frozen=True)
class Page:
    """Rows newest first, and the cursors of the older and the newer page (None: no page)."""

    operations: list[Operation]
    older: str | None = None
    newer: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()

    def query(self, cursor: str) -> str:
        """The query string of the page `cursor` leads to, with this page's filters."""
        return urlencode([*self.parameters, ("cursor", cursor)], safe=",:")

    @property
    def next_url(self) -> str | None:
        return f"{reverse('operations')}?{self.query(self.older)}" if self.older else None

    @property
    def prev_url(self) -> str | None:
        return f"{reverse('operations')}?{self.query(self.newer)}" if self.newer else None


def listing_of(request: HttpRequest, query: QueryDict | None = None) -> Listing:
    """Read the list's query parameters; raise InvalidRequest (or Forbidden) naming a bad one.

    They come from `query`, by default the request's own. An empty value is the same
    as leaving the parameter out, as an HTML form sends it. `status` may be repeated or
    comma-separated; any other parameter given twice, or one the list does not take, is
    refused rather than ignored: a misspelt filter must not answer with the whole history.
    """
    query = request.GET if query is None else query
    unknown = sorted(set(query) - set(PARAMETERS))
    if unknown:
        names = ", ".join(repr(name[:SHOWN_CHARACTERS]) for name in unknown)
        raise InvalidRequest(
            f"Unknown query parameter(s) {names}; the list takes {', '.join(PARAMETERS)}."
        )
    filters = Filters(
        statuses=statuses_of(query.getlist("status")),
        kind=kind_of(single(query, "kind")),
        client=client_of(request, single(query, "client")),
        id_prefix=id_prefix_of(single(query, "id")),
    )
    limit = single(query, "limit")
    position, newer = cursor_position(single(query, "cursor"), filters.fingerprint())
    return Listing(
        filters=filters,
        limit=limit_of(limit) if limit else DEFAULT_LIMIT,
        limit_given=bool(limit),
        after=None if newer else position,
        before=position if newer else None,
    )


def single(query: QueryDict, name: str) -> str:
    values = query.getlist(name)
    if len(values) > 1:
        raise InvalidRequest(f"{name} was given {len(values)} times; give it once.")
    return values[0] if values else ""


def shown(value: str) -> str:
    """A value as an error message quotes it, cut short: it came from the client."""
    if len(value) > SHOWN_CHARACTERS:
        return repr(value[:SHOWN_CHARACTERS]) + "…"
    return repr(value)


def statuses_of(values: Iterable[str]) -> tuple[str, ...]:
    """Every status asked for, in the statuses' own order; none for none."""
    asked = {item.strip() for value in values if value for item in value.split(",")}
    wrong = sorted(asked - set(Status.values))
    if wrong:
        raise InvalidRequest(
            f"status={shown(wrong[0])} is not a status; give one or more of "
            f"{', '.join(Status.values)}, separated by commas."
        )
    return tuple(status for status in Status.values if status in asked)


def kind_of(value: str) -> str:
    known = known_kinds()
    if value and value not in known:
        raise InvalidRequest(
            f"kind={shown(value)} is not a registered kind; known kinds: {', '.join(known)}."
        )
    return value


def client_of(request: HttpRequest, value: str) -> str:
    """`me`, or a client key: the caller's own, or any one for staff (else Forbidden)."""
    if not value or value == MINE:
        return value
    if not CLIENT_KEY_PATTERN.fullmatch(value):
        raise InvalidRequest(
            f"client={shown(value)} is neither 'me' nor a client key such as 'user:5' "
            "or 'ip:192.0.2.1'."
        )
    user = request.user
    if value != client_key(request) and not (user.is_authenticated and user.is_staff):
        raise Forbidden(
            f"client={shown(value)} is another client; only staff may list another "
            "client's operations (ask for client=me)."
        )
    return value


def id_prefix_of(value: str) -> str:
    """The hexadecimal digits an id must start with: 1 to 32, or as the id is written."""
    prefix = value.lower()
    if "-" in prefix:
        fits = len(prefix) <= len(ID_SHAPE) and all(
            character == "-" if shape == "-" else character in HEX_DIGITS
            for character, shape in zip(prefix, ID_SHAPE, strict=False)
        )
    else:
        fits = len(prefix) <= 32 and all(character in HEX_DIGITS for character in prefix)
    if not fits:
        raise InvalidRequest(
            f"id={shown(value)} is not the start of an operation id; give 1 to 32 "
            "hexadecimal digits, with or without the id's hyphens."
        )
    return prefix.replace("-", "")


def limit_of(value: str) -> int:
    if not LIMIT_PATTERN.fullmatch(value) or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidRequest(f"limit={shown(value)} is not a whole number from 1 to {MAX_LIMIT}.")
    return int(value)


def page_of(request: HttpRequest, listing: Listing) -> Page:
    """The page `listing` asks for, newest first, with the cursors of the pages beside it.

    Its older page is the rows older than its last row (none past the end); its newer
    page, the rows newer than its first (none on the first page). A page reached from
    an older one has a newer one; a page reached from a newer one, an older one. When
    nothing is newer than a cursor to the newer rows, the first page answers it.
    """
    found = matching_operations(request, listing)
    matching = in_statuses(found, listing.filters.statuses)
    to_newer = listing.before is not None
    operations, more = nearest(
        matching, sources(found, listing.filters), listing.limit, newer=to_newer
    )
    if to_newer and not operations:
        return page_of(request, replace(listing, before=None))
    if to_newer:
        operations.reverse()
    if operations:
        first, last = Position.of(operations[0]), Position.of(operations[-1])
    else:  # emptied since its link was made: the way back starts at the cursor's own row
        first, last = (listing.after.just_older() if listing.after else None), None
    has_older = more or to_newer
    has_newer = more if to_newer else listing.after is not None
    filters = listing.filters
    return Page(
        operations,
        older=cursor_of(last, filters.fingerprint()) if has_older and last else None,
        newer=cursor_of(first, filters.fingerprint(), newer=True) if has_newer and first else None,
        parameters=tuple(listing.parameters()),
    )


def matching_operations(request: HttpRequest, listing: Listing) -> QuerySet[Operation]:
    """The operations the listing shows past its cursor, of any status (`sources` adds those).

    Summaries never read params, result or error.
    """
    filters = listing.filters
    found = Operation.objects.all().defer(*UNSUMMARISED_FIELDS)
    if filters.kind:
        found = found.filter(kind=filters.kind)
    if filters.client:
        key = client_key(request) if filters.client == MINE else filters.client
        found = found.filter(client_key=key)
    if filters.id_prefix:
        lowest = uuid.UUID(hex=filters.id_prefix.ljust(32, "0"))
        highest = uuid.UUID(hex=filters.id_prefix.ljust(32, "f"))
        found = found.filter(id__gte=lowest, id__lte=highest)
    if listing.after:
        # (created_at, id) < the cursor's, written so that created_at's index bounds the walk.
        after = listing.after
        found = found.filter(created_at__lte=after.created_at).exclude(
            created_at=after.created_at, id__gte=after.id
        )
    if listing.before:
        before = listing.before  # (created_at, id) > the cursor's, likewise
        found = found.filter(created_at__gte=before.created_at).exclude(
            created_at=before.created_at, id__lte=before.id
        )
    return found


def in_statuses(found: QuerySet[Operation], statuses: tuple[str, ...]) -> QuerySet[Operation]:
    if len(statuses) == 1:
        return found.filter(status=statuses[0])
    return found.filter(status__in=statuses) if statuses else found


def sources(found: QuerySet[Operation], filters: Filters) -> list[QuerySet[Operation]]:
    """The queries whose newest (or oldest) rows, merged, are those of `found` in its statuses.

    One a status: `status IN (...)` ordered by time makes the database fetch and sort
    every row of those statuses (see dashboard.state.ordered_operations), while each
    `status = ...` walks (status, created_at)'s index from the newest and stops. A kind
    alone is split by status too: its only index, (kind, status, finished_at), would
    have SQLite read and sort every operation of the kind.
    """
    statuses = filters.statuses or (tuple(Status.values) if filters.kind else ())
    if len(statuses) < 2:
        return [in_statuses(found, statuses)]
    return [found.filter(status=status) for status in statuses]


def nearest(
    matching: QuerySet[Operation],
    sources: list[QuerySet[Operation]],
    limit: int,
    *,
    newer: bool = False,
) -> tuple[list[Operation], bool]:
    """The `limit` newest of `matching` by (created_at, id), and whether more match.

    With `newer`, the `limit` oldest instead, oldest first: the rows nearest a cursor
    to the newer rows. Each source is read ordered by created_at alone, which its index
    gives without a sort. Rows created in the same microsecond may then come in any
    order, so when the page ends inside such a tie, every row of that instant is read
    again by id.
    """
    sign = "" if newer else "-"
    fetched: dict[uuid.UUID, Operation] = {}
    for source in sources:
        # A row that changed status between two sources' reads is kept once.
        fetched |= {row.id: row for row in source.order_by(f"{sign}created_at")[: limit + 1]}
    rows = sorted(fetched.values(), key=lambda row: (row.created_at, row.id), reverse=not newer)
    if len(rows) <= limit:
        return rows, False
    boundary = rows[limit - 1].created_at
    if rows[limit].created_at == boundary:
        nearer = list(takewhile(lambda row: row.created_at != boundary, rows))
        tied = matching.filter(created_at=boundary).order_by(f"{sign}id")[: limit - len(nearer)]
        rows = nearer + list(tied)
    return rows[:limit], True
