"""Start an operation for a request: spend the client's start budget, then admit.

The API, the templates' endpoint and the dashboard's form all start here.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from api import limits
from api.clients import client_key
from operations.admission import admit
from operations.exceptions import AdmissionError, RateLimited
from operations.models import Operation


@dataclass(frozen=True)
class Started:
    operation: Operation
    usage: limits.Usage | None  # the start budget after this start; None while limits are off


def start_operation(request: HttpRequest, kind: object, params: object) -> Started:
    """Start `kind` with `params` for this client, or raise why not."""
    usage = spend_start(request)
    return Started(admit_for(request, kind, params, usage), usage)


def spend_start(request: HttpRequest) -> limits.Usage | None:
    """Spend one start from the client's budget; None while limits are off.

    Raises RateLimitUnavailable when the counters cannot be read (fail closed: the
    limits protect a quota) and RateLimited past the budget.
    """
    usage = limits.spend(request, limits.START)
    if usage and usage.exceeded:
        raise RateLimited(usage)
    return usage


def admit_for(
    request: HttpRequest, kind: object, params: object, usage: limits.Usage | None
) -> Operation:
    """Admit the operation for this client, or raise the AdmissionError with its `usage`."""
    try:
        return admit(kind, params, client_key=client_key(request), user=request.user)
    except AdmissionError as refusal:
        refusal.usage = usage
        raise
