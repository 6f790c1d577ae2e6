"""Where each waiting operation stands in the line, and when it may expect a slot.

`places()` plays the turn out over the whole line (the dashboard shows its
front); `place_of()` answers for one operation from one row per waiting client
(a start's 202 and an operation's page), and the two agree
(`tests/operations/test_line.py`).
"""

from __future__ import annotations

import statistics
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone

from operations.estimates import DEFAULT_EXPECTED_SECONDS, expected_free_in, kind_duration
from operations.line import in_order
from operations.models import ClientTurn, Operation, Slot


@dataclass(frozen=True)
class Place:
    """A waiting operation's place in line (1 is next) and when it may expect a slot."""

    position: int
    of: int
    expected_in_seconds: int


def places() -> dict[uuid.UUID, Place]:
    """Each waiting operation's place, by id, as the line would serve it from now on.

    The turn is played out: operations moved to the front first, then one from
    each client in turn (least recently served first), each client's own in the
    order they came. The expected start assumes slots keep freeing as the
    soonest one is expected to, one holder's typical run apart.
    """
    rows = list(
        in_order(Operation.objects.waiting()).values_list("id", "client_key", "moved_to_front_at")
    )
    order = [id for id, _, moved in rows if moved is not None]
    turns: dict[str, deque[uuid.UUID]] = {}
    for id, client, moved in rows:
        if moved is None:
            turns.setdefault(client, deque()).append(id)
    clients = deque(turns)
    while clients:
        client = clients.popleft()
        order.append(turns[client].popleft())
        if turns[client]:
            clients.append(client)
    first, spacing = start_estimates()
    return {
        id: Place(index + 1, len(order), first + round(index * spacing))
        for index, id in enumerate(order)
    }


def place_of(operation: Operation) -> Place | None:
    """`operation`'s place as `places()` gives it, from one row per waiting client.

    Answering a start that joined a long line must not read the line: in each
    round of the turn every client is served once, so the k-th waiting operation
    of a client comes after k-1 of every client's (or all of those it has), after
    the k-th of each client whose turn comes first, and after everything moved to
    the front.
    """
    waiting = Operation.objects.waiting()
    if not waiting.filter(pk=operation.pk).exists():
        return None
    fronted = waiting.exclude(moved_to_front_at=None)
    total = waiting.count()
    if operation.moved_to_front_at is not None:
        ahead = fronted.filter(moved_to_front_at__gt=operation.moved_to_front_at).count()
        return placed(ahead, total)
    in_turn = waiting.filter(moved_to_front_at=None)
    earlier = Q(created_at__lt=operation.created_at) | Q(
        created_at=operation.created_at, id__lt=operation.id
    )
    k = in_turn.filter(earlier, client_key=operation.client_key).count() + 1
    clients = list(
        in_turn.values("client_key")
        .annotate(count=Count("id"), first=Min("created_at"))
        .values_list("client_key", "count", "first")
    )
    served = dict(
        ClientTurn.objects.filter(client_key__in=[client for client, _, _ in clients]).values_list(
            "client_key", "served_at"
        )
    )

    def turn(client: str, first: datetime) -> tuple[bool, datetime, datetime]:
        last_served = served.get(client)
        return (last_served is not None, last_served or first, first)

    firsts = {client: first for client, _, first in clients}
    if operation.client_key not in firsts:  # handed a slot meanwhile
        return None
    mine = turn(operation.client_key, firsts[operation.client_key])
    ahead = fronted.count() + sum(min(count, k - 1) for _, count, _ in clients)
    ahead += sum(1 for c, count, f in clients if count >= k and turn(c, f) < mine)
    return placed(ahead, total)


def placed(ahead: int, total: int) -> Place:
    first, spacing = start_estimates()
    return Place(ahead + 1, total, first + round(ahead * spacing))


def start_estimates() -> tuple[int, float]:
    """Seconds until the next slot is expected to free, and then between two frees."""
    now = timezone.now()
    soonest = expected_free_in(now).seconds
    kinds = set(Slot.objects.held().values_list("operation__kind", flat=True))
    typical = [kind_duration(kind).seconds for kind in kinds] or [DEFAULT_EXPECTED_SECONDS]
    return soonest, statistics.median(typical) / max(1, settings.COORDHUB.max_concurrent_operations)
