"""What the live region shows, and the versions that let a poll skip unchanged content."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Func, QuerySet, Subquery
from django.utils import timezone

from api.limits import Usage
from operations import line, places
from operations.models import FINISHED_STATUSES, Operation, Slot, Status

SHOWN_OPERATIONS = 20
# The live fragment's versions travel in these headers: the browser sends back the
# content version it shows, and an unchanged poll is answered 204.
STATE_HEADER = "X-Coordhub-State"
CONTENT_HEADER = "X-Coordhub-Content"
OPERATION_FIELDS = ("id", "status", "progress", "message")
SLOT_FIELDS = ("number", "operation_id", "lease_expires_at")
# The summary rows leave out the unbounded JSON fields.
UNSHOWN_FIELDS = ("params", "result", "message_history", "traceback")
LINE_SHOWN = 10  # waiting operations the dashboard lists, from the front
UNFINISHED_STATUSES = tuple(status for status in Status if status not in FINISHED_STATUSES)


@dataclass(frozen=True)
class Versions:
    state: str
    content: str


def versions_of(
    operations: Iterable[tuple], slots: Iterable[tuple], budget: Usage | None
) -> Versions:
    """Hash what the live region shows, from rows of OPERATION_FIELDS and SLOT_FIELDS."""
    operations, slots = list(operations), list(slots)
    # A change of state: an operation appeared, changed status or ended; a slot changed hands.
    state = [f"{op_id}:{status}" for op_id, status, *_ in operations]
    # The line travels on every slot row (see `version_queries`): its length, newest
    # arrival and latest move to the front.
    state += [f"slot{number}:{holder}:{line}" for number, holder, _, *line in slots]
    state_version = digest(state)
    # What is drawn also moves with progress, leases and the client's budget.
    content = [state_version]
    content += [f"{op_id}:{progress}:{message}" for op_id, _, progress, message in operations]
    content += [f"lease{number}:{expires}" for number, _, expires, *_ in slots]
    content += [f"budget:{budget.remaining}" if budget else "budget:off"]
    return Versions(state_version, digest(content))


def digest(parts: list[str]) -> str:
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def ordered_operations() -> tuple[QuerySet[Operation], QuerySet[Operation]]:
    """Running and queued operations, then finished ones; each newest first.

    Waiting ones are the line's own panel, in the order they will be served.

    Both stay as fast with 100,000 finished operations as with 100. The active ones
    are found through the (status, created_at) index. The finished ones are the
    history itself: asked for by status (`IN`), the database would fetch and sort
    every one of them before keeping 20. Asked for as "not unfinished", no index
    serves the filter, so the database walks created_at's index from the newest and
    stops after 20, skipping the few unfinished ones on its way.
    """
    return (
        Operation.objects.holding().order_by("-created_at"),
        Operation.objects.exclude(status__in=UNFINISHED_STATUSES).order_by("-created_at"),
    )


def shown() -> list[Operation]:
    """Running and queued operations first, then the most recent others.

    Rows shown as a summary: their params and result are never read.
    """
    active, finished = (queryset.defer(*UNSHOWN_FIELDS) for queryset in ordered_operations())
    first = list(active[:SHOWN_OPERATIONS])
    room = SHOWN_OPERATIONS - len(first)
    return first + (list(finished[:room]) if room else [])


def slots_shown() -> list[Slot]:
    """Every slot with its holder, whose params and result are never read."""
    holder_fields = [f"operation__{name}" for name in UNSHOWN_FIELDS]
    return list(Slot.objects.select_related("operation").defer(*holder_fields).order_by("number"))


@functools.cache
def version_queries(alias: str) -> tuple[tuple[str, tuple], ...]:
    """The SQL of the three version queries, compiled once per database.

    An unchanged poll runs these on every request; through the ORM their compiling and
    row conversion cost ten times what the database does.
    """
    active, finished = ordered_operations()
    waiting = Operation.objects.waiting().order_by()
    line = {  # uncorrelated: each worked out once per query, not per slot row
        "line_length": Subquery(waiting.annotate(n=Func("id", function="COUNT")).values("n")),
        "line_newest": Subquery(
            waiting.annotate(at=Func("created_at", function="MAX")).values("at")
        ),
        "line_moved": Subquery(
            waiting.annotate(at=Func("moved_to_front_at", function="MAX")).values("at")
        ),
    }
    querysets = (
        active[:SHOWN_OPERATIONS].values_list(*OPERATION_FIELDS),
        finished[:SHOWN_OPERATIONS].values_list(*OPERATION_FIELDS),
        Slot.objects.order_by("number").annotate(**line).values_list(*SLOT_FIELDS, *line),
    )
    return tuple(queryset.query.get_compiler(alias).as_sql() for queryset in querysets)


def current_versions(budget: Usage | None) -> Versions:
    """The versions alone, from three small queries: what an unchanged poll costs.

    The rows are hashed as the database driver returns them, so these versions are
    the only ones: the rendered live region carries the versions computed here.
    """
    rows = []
    with connection.cursor() as cursor:
        for sql, params in version_queries(connection.alias):
            cursor.execute(sql, params)
            rows.append(cursor.fetchall())
    active, finished, slots = rows
    operations = active + finished[: SHOWN_OPERATIONS - len(active)]
    return versions_of(operations, slots, budget)


@dataclass
class LiveState:
    operations: list[Operation]
    slots: list[Slot]
    slot_limit: int
    budget: Usage | None
    versions: Versions
    line: list[InLine] = field(default_factory=list)
    waiting: int = 0  # the whole line's length (`line` shows its front)
    share: int = 0  # slots one client may hold
    rendered_at: int = field(init=False)

    def __post_init__(self) -> None:
        self.rendered_at = int(timezone.now().timestamp() * 1000)

    @property
    def state_version(self) -> str:
        return self.versions.state

    @property
    def content_version(self) -> str:
        return self.versions.content

    @property
    def held(self) -> int:
        now = timezone.now()
        return sum(1 for slot in self.slots if slot.is_live(now))


def live_state(budget: Usage | None, versions: Versions | None = None) -> LiveState:
    """What the live region shows, with `versions` (computed now if not given).

    The versions are taken before the rows: if something changes in between, the
    client holds an older version than what it shows and its next poll renders once
    more, where the other order could leave it showing stale rows as current.
    """
    versions = versions or current_versions(budget)
    operations = shown()
    slots = slots_shown()
    front, waiting = line_front()
    return LiveState(
        operations,
        slots,
        settings.COORDHUB.max_concurrent_operations,
        budget,
        versions,
        line=front,
        waiting=waiting,
        share=line.share(),
    )


@dataclass(frozen=True)
class InLine:
    operation: Operation
    place: places.Place


def line_front() -> tuple[list[InLine], int]:
    """The front of the line (LINE_SHOWN operations, in the order served) and its length."""
    placed = places.places()
    if not placed:
        return [], 0
    first = sorted(placed, key=lambda id: placed[id].position)[:LINE_SHOWN]
    rows = Operation.objects.defer(*UNSHOWN_FIELDS).in_bulk(first)
    return [InLine(rows[id], placed[id]) for id in first if id in rows], len(placed)
