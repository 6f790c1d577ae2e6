"""Start an operation for a request: validate, spend the start budget, then claim a slot.

The API, the templates' endpoints and the dashboard's form all start here. A
refusal that starts nothing spends nothing: bad input is refused before the
budget is touched, and a start refused for its rate or a full pool is given back.
Every attempt, refused or not, also counts against a separate, generous limit
(`api.pipeline.start_attempts_limited`) so that refunds cannot be used to hammer
the claim.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import DatabaseError
from django.http import HttpRequest

from api import limits
from api.clients import client_key
from operations import refusals
from operations.admission import WhenBusy, admit_valid
from operations.exceptions import AdmissionError, RateLimited
from operations.kinds import get_kind
from operations.models import Operation


@dataclass(frozen=True)
class Started:
    operation: Operation
    usage: limits.Usage | None  # the start budget after this start; None while limits are off


def start_operation(
    request: HttpRequest,
    kind_name: object,
    params: object,
    retry_of: Operation | None = None,
    when_busy: WhenBusy = "refuse",
) -> Started:
    """Start `kind_name` with `params` for this client, or raise why not.

    `retry_of`: the operation this start retries (the caller checked the client may).
    `when_busy="wait"`: join the line rather than be refused for a busy pool; the
    start is counted when it is accepted into the line.

    Raises UnknownKind or InvalidParams before anything is spent, then
    RateLimitUnavailable when the counters cannot be read (fail closed: the limits
    protect a quota), RateLimited past the budget, NoFreeSlot, ClientShareFull or
    LineFull.
    """
    kind = get_kind(kind_name)
    cleaned = kind.validate(params)
    usage = spend_start(request)
    try:
        operation = admit_valid(
            kind,
            cleaned,
            client_key=client_key(request),
            user=request.user,
            retry_of=retry_of,
            when_busy=when_busy,
        )
    except AdmissionError as refusal:
        refusal.usage = limits.refund(usage)
        raise
    except DatabaseError:  # the start rolled back: nothing was started
        limits.refund(usage)
        raise
    return Started(operation, usage)


def spend_start(request: HttpRequest) -> limits.Usage | None:
    """Spend a start, with the attempt the pipeline left to count, in one round trip."""
    if getattr(request, "start_attempt_counted", True):
        usage = limits.spend(request, limits.START)
    else:
        request.start_attempt_counted = True
        attempts, usage = limits.spend_together(request, limits.ATTEMPT, limits.START)
        if attempts and attempts.exceeded:
            limits.refund(usage)
            raise RateLimited(attempts)  # a flood: not counted, see refused_for_rate
    if usage and usage.exceeded:
        raise refused_for_rate(limits.refund(usage))
    return usage


def refused_for_rate(usage: limits.Usage | None) -> RateLimited:
    """The refusal of a start past the client's start budget, counted for the charts.

    Attempts past START_ATTEMPTS_PER_MINUTE are refused by the cache alone and not
    counted: so a flood from one client costs the database nothing, and counting
    refusals writes at most that many rows a minute per client.
    """
    refusals.record(RateLimited.code)
    return RateLimited(usage)
