"""Admission: validate, claim a slot (or join the line), create the operation and enqueue it.

Every entry point (API, dashboard, admin "retry") starts operations here. A
refusal raises an `AdmissionError` and leaves nothing behind: no row, no slot.
"""

from __future__ import annotations

from typing import Any, Literal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from operations import counters, enqueueing, line, refusals
from operations.exceptions import NoFreeSlot
from operations.kinds import Kind, get_kind
from operations.models import Operation
from operations.slots import claim_slot

WhenBusy = Literal["refuse", "wait"]
WHEN_BUSY: tuple[WhenBusy, ...] = ("refuse", "wait")


def admit(
    kind_name: object,
    params: object,
    *,
    client_key: str = "",
    user: Any = None,
    retry_of: Operation | None = None,
    when_busy: WhenBusy = "refuse",
) -> Operation:
    """Start an operation of `kind_name`, or raise why it cannot start."""
    kind = get_kind(kind_name)
    cleaned = kind.validate(params)
    return admit_valid(
        kind, cleaned, client_key=client_key, user=user, retry_of=retry_of, when_busy=when_busy
    )


def admit_valid(
    kind: Kind,
    params: dict[str, Any],
    *,
    client_key: str = "",
    user: Any = None,
    retry_of: Operation | None = None,
    when_busy: WhenBusy = "refuse",
) -> Operation:
    """Claim a slot for `kind` with validated `params`, create the operation, enqueue it.

    Raises NoFreeSlot when every slot is taken, ClientShareFull when the client holds
    its share, KindCapFull or KeyCapFull at the kind's caps; with `when_busy="wait"`
    the operation joins the line instead (status `waiting`), or LineFull is raised
    when the line is full. `retry_of`: the
    operation this one retries, recorded on the new one.

    One short write transaction: claim the slot, enqueue the task, insert the
    operation (already carrying its task's id), count the allocation. A start
    that may wait, or whose client's share is smaller than the pool, takes the
    line's lock first (`operations.line`).
    """
    config = settings.COORDHUB
    operation = Operation(
        kind=kind.name,
        params=params,
        client_key=client_key,
        user=user if user is not None and user.is_authenticated else None,
        retry_of=retry_of,
        concurrency_key=kind.key_of(params),
    )
    try:
        with transaction.atomic(), counters.counted():
            in_line = when_busy == "wait" or line.shares_bind() or kind.capped
            if in_line:
                line.serialise()
            try:
                claim_for(operation, kind, config, in_line=in_line)
            except NoFreeSlot as refusal:
                if when_busy != "wait":
                    raise
                line.join(operation, refusal)
    except NoFreeSlot as refusal:
        counters.add(counters.REJECTIONS)
        refusals.record(refusal.code)
        raise
    return operation


def claim_for(operation: Operation, kind: Kind, config: Any, *, in_line: bool) -> None:
    """Claim a slot within the client's share and the kind's caps, enqueue, insert.

    `in_line`: the start holds the line's lock, so counts the slots held and is
    recorded as a turn served. Without it no share or cap applies and nobody
    eligible waits (a free slot would have been handed over), so the turn does
    not matter.
    """
    now = timezone.now()
    if in_line:
        line.check_caps(operation, kind, now)
    hold = claim_slot(
        operation, limit=config.max_concurrent_operations, lease_seconds=config.slot_lease_seconds
    )
    enqueueing.hand_to_worker(operation, hold)
    operation.save(force_insert=True)
    if in_line:
        line.mark_served(operation.client_key, now)
    counters.add(counters.ALLOCATIONS)
