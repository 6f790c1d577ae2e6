"""What the live region shows, and the versions that let a poll skip unchanged content."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from operations.limits import Usage
from operations.models import Operation, Slot

SHOWN_OPERATIONS = 20
OPERATION_FIELDS = ("id", "status", "progress", "message")
SLOT_FIELDS = ("number", "operation_id", "lease_expires_at")


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
    state += [f"slot{number}:{holder}" for number, holder, _ in slots]
    state_version = digest(state)
    # What is drawn also moves with progress, leases and the client's budget.
    content = [state_version]
    content += [f"{op_id}:{progress}:{message}" for op_id, _, progress, message in operations]
    content += [f"lease{number}:{expires}" for number, _, expires in slots]
    content += [f"budget:{budget.remaining}" if budget else "budget:off"]
    return Versions(state_version, digest(content))


def digest(parts: list[str]) -> str:
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def shown(select: Callable[[QuerySet], QuerySet]) -> list[Any]:
    """Running and queued operations first, then the most recent others."""
    active = list(select(Operation.objects.active().order_by("-created_at"))[:SHOWN_OPERATIONS])
    room = SHOWN_OPERATIONS - len(active)
    finished = select(Operation.objects.finished().order_by("-created_at"))[:room] if room else []
    return active + list(finished)


def current_versions(budget: Usage | None) -> Versions:
    """The versions alone, from three small queries: what an unchanged poll costs."""
    operations = shown(lambda queryset: queryset.values_list(*OPERATION_FIELDS))
    slots = Slot.objects.order_by("number").values_list(*SLOT_FIELDS)
    return versions_of(operations, slots, budget)


@dataclass
class LiveState:
    operations: list[Operation]
    slots: list[Slot]
    slot_limit: int
    budget: Usage | None
    rendered_at: int = field(init=False)
    state_version: str = field(init=False)
    content_version: str = field(init=False)

    def __post_init__(self) -> None:
        self.rendered_at = int(timezone.now().timestamp() * 1000)
        versions = versions_of(
            ((op.id, op.status, op.progress, op.message) for op in self.operations),
            ((slot.number, slot.operation_id, slot.lease_expires_at) for slot in self.slots),
            self.budget,
        )
        self.state_version, self.content_version = versions.state, versions.content

    @property
    def held(self) -> int:
        now = timezone.now()
        return sum(1 for slot in self.slots if slot.operation_id and not slot.is_expired(now))


def live_state(budget: Usage | None) -> LiveState:
    operations = shown(lambda queryset: queryset)
    slots = list(Slot.objects.select_related("operation").order_by("number"))
    return LiveState(operations, slots, settings.COORDHUB.max_concurrent_operations, budget)
