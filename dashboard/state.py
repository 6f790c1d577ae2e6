"""What the live region shows, and the versions that let a poll skip unchanged content."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from operations.limits import Usage
from operations.models import ACTIVE_STATUSES, Operation, Slot, Status

SHOWN_OPERATIONS = 20


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
        # A change of state: an operation appeared, changed status or ended; a slot changed hands.
        state = [f"{op.id}:{op.status}" for op in self.operations]
        state += [f"slot{slot.number}:{slot.operation_id}" for slot in self.slots]
        self.state_version = digest(state)
        # What is drawn also moves with progress and the client's budget.
        content = [self.state_version]
        content += [f"{op.id}:{op.progress}:{op.message}" for op in self.operations]
        content += [f"lease{slot.number}:{slot.lease_expires_at}" for slot in self.slots]
        content += [f"budget:{self.budget.remaining}" if self.budget else "budget:off"]
        self.content_version = digest(content)

    @property
    def held(self) -> int:
        now = timezone.now()
        return sum(1 for slot in self.slots if slot.operation_id and not slot.is_expired(now))


def digest(parts: list[str]) -> str:
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()


def live_state(budget: Usage | None) -> LiveState:
    """Running and queued operations first, then the most recent others."""
    active_first = Case(
        When(status__in=ACTIVE_STATUSES, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    operations = list(Operation.objects.order_by(active_first, "-created_at")[:SHOWN_OPERATIONS])
    limit = settings.COORDHUB.max_concurrent_operations
    slots = list(Slot.objects.select_related("operation").order_by("number"))
    return LiveState(operations, slots, limit, budget)


STATUS_TONES = {
    Status.QUEUED: "waiting",
    Status.RUNNING: "busy",
    Status.COMPLETED: "good",
    Status.FAILED: "bad",
    Status.CANCELLED: "muted",
}
