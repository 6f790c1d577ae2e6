"""The dashboard: the page, its live fragment, and the start and cancel actions."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from api import limits
from api.clients import may_control
from api.pipeline import allow_methods, count_start_attempt, read_limited, signed_in
from api.starts import start_operation
from dashboard.detail import cancel_for
from dashboard.history import page_history
from dashboard.state import CONTENT_HEADER, STATE_HEADER, Versions, current_versions, live_state
from monitoring.drawing import chart_context
from operations.admission import WhenBusy
from operations.exceptions import (
    AdmissionError,
    Forbidden,
    InvalidParams,
    InvalidRequest,
    NoFreeSlot,
    RateLimited,
    RateLimitUnavailable,
)
from operations.kinds import get_kind, known_kinds
from operations.models import Operation

CHANGED_EVENT = "coordhub:changed"


def start_budget(request: HttpRequest) -> limits.Usage | None:
    try:
        return limits.peek(request, limits.START)
    except RateLimitUnavailable:
        return None


def live_context(
    request: HttpRequest, budget: limits.Usage | None, versions: Versions | None = None
) -> dict[str, Any]:
    """The live region for this client: its own operations' reasons and cancel buttons only.

    Rendered per request, so a fragment never carries another client's error text;
    tabs share it only within one user's namespace.
    """
    live = live_state(budget, versions)
    shown = [*live.operations, *(entry.operation for entry in live.line)]
    owned = {operation.id for operation in shown if may_control(request, operation)}
    mine = sum(1 for slot in live.slots if slot.operation and may_control(request, slot.operation))
    context = {"live": live, "owned": owned, "slots_mine": mine}
    if request.user.is_staff:  # client keys are addresses: staff only
        holders = Counter(slot.operation.client_key for slot in live.slots if slot.operation)
        context["shares"] = sorted(holders.items(), key=lambda item: (-item[1], item[0]))
    return context


def start_form_context(kind_name: str, form: Any = None, **extra: Any) -> dict[str, Any]:
    """The start form; "Wait for a free slot" is ticked unless the form came back without it."""
    kind = get_kind(kind_name)
    return {
        "kinds": known_kinds(),
        "kind": kind,
        "params_form": form or kind.params_form(),
        "when_busy": "wait",
        **extra,
    }


def retry_form_context(request: HttpRequest, retry_of: str) -> dict[str, Any]:
    """The start form, filled in from the operation `retry_of` names if this client may retry it."""
    if not retry_of:
        return start_form_context("simulated")
    try:
        original = retried_operation(request, retry_of)
    except (InvalidRequest, Forbidden) as exc:
        return start_form_context("simulated", problem=str(exc))
    kind = get_kind(chosen_kind(original.kind))
    form = kind.params_form(initial=original.params)
    return start_form_context(kind.name, form, retry_of=original)


def retried_operation(request: HttpRequest, value: str) -> Operation:
    """The operation a start retries, named by `value`; raise why this client may not retry it."""
    try:
        operation = Operation.objects.filter(pk=uuid.UUID(value)).first()
    except ValueError:
        operation = None
    if operation is None:
        raise InvalidRequest(f"There is no operation {value[:40]!r} to retry.")
    if not may_control(request, operation):
        raise Forbidden("Only the client that started an operation may retry it.")
    return operation


def chosen_kind(name: str) -> str:
    return name if name in known_kinds() else "simulated"


@allow_methods("GET")
@signed_in
def index(request: HttpRequest) -> HttpResponse:
    """The whole dashboard page; `?retry_of=<id>` fills the start form in from that operation."""
    form_context = retry_form_context(request, request.GET.get("retry_of", ""))
    context = live_context(request, start_budget(request)) | form_context | page_history(request)
    if charts := request.GET.get("charts"):  # `?charts=day`: the charts' links without htmx
        # A range that does not exist: the page asks for the default one.
        with contextlib.suppress(InvalidRequest):
            context |= chart_context(charts)
    # Without, the page carries a panel that asks for the charts once it is up: the
    # page is not held back by them.
    return render(request, "dashboard/index.html", context | {"config": settings.COORDHUB})


@allow_methods("GET")
@signed_in
@read_limited
def live(request: HttpRequest) -> HttpResponse:
    """The live region; 204 when the client already shows this content."""
    budget = start_budget(request)
    # Versions first, from small queries: most polls end here with a 204.
    versions = current_versions(budget)
    headers = {STATE_HEADER: versions.state, CONTENT_HEADER: versions.content}
    if request.headers.get(CONTENT_HEADER) == versions.content:
        return HttpResponse(status=204, headers=headers)
    context = live_context(request, budget, versions)
    response = render(request, "dashboard/index.html#live", context)
    for name, value in headers.items():
        response[name] = value
    return response


@allow_methods("GET")
@signed_in
def start_form(request: HttpRequest) -> HttpResponse:
    """The parameter fields of the chosen kind."""
    kind_name = chosen_kind(request.GET.get("kind", "simulated"))
    extra = {}
    if retry_of := request.GET.get("retry_of", ""):  # a retry with changes whose kind changed
        try:
            extra["retry_of"] = retried_operation(request, retry_of)
        except (InvalidRequest, Forbidden) as exc:
            extra["problem"] = str(exc)
    context = start_form_context(kind_name, **extra)
    return render(request, "dashboard/index.html#start-form", context)


@allow_methods("POST")
@signed_in
def start(request: HttpRequest) -> HttpResponse:
    """Start an operation from the form; errors show next to the fields."""
    kind_name = chosen_kind(request.POST.get("kind", ""))
    form = get_kind(kind_name).params_form(request.POST)
    # An unticked box sends nothing: only "wait" waits.
    when_busy: WhenBusy = "wait" if request.POST.get("when_busy") == "wait" else "refuse"
    status, extra = 400, {"when_busy": when_busy}
    try:
        count_start_attempt(request)  # answered in the form, like every refusal here
        retry_of = request.POST.get("retry_of", "")
        original = retried_operation(request, retry_of) if retry_of else None
        extra |= {"retry_of": original}
        if form.is_valid():  # a form sent back with errors spends no start
            params = {key: value for key, value in form.cleaned_data.items() if value is not None}
            start = start_operation(request, kind_name, params, original, when_busy)
            extra = {"started": start.operation, "when_busy": when_busy}
            status, form = 201, None
    except RateLimited as exc:
        status, extra = 429, extra | {"retry_after": exc.usage.reset_seconds, "error": exc.code}
    except NoFreeSlot as exc:  # a full pool, a share or cap, a full line
        refusal = {"retry_after": exc.retry_after, "error": exc.code, "refusal": str(exc)}
        status, extra = 429, extra | refusal
    except (InvalidRequest, Forbidden) as exc:  # the operation it would retry
        status, extra = exc.status, {"problem": str(exc)}
    except RateLimitUnavailable as exc:
        status, extra = exc.status, {"problem": str(exc)}
    except InvalidParams as exc:
        for field, messages in exc.errors.items():
            form.add_error(field if field in form.fields else None, messages)
    except AdmissionError as exc:
        extra |= {"problem": str(exc)}
    context = start_form_context(kind_name, form, **extra)
    response = render(request, "dashboard/index.html#start-form", context, status=status)
    if status == 201:
        response["HX-Trigger"] = CHANGED_EVENT
    return response


@allow_methods("POST")
@signed_in
def cancel_operation(request: HttpRequest, operation_id: Any) -> HttpResponse:
    """Cancel from the dashboard and answer with the refreshed live region."""
    status = cancel_for(request, operation_id)
    context = live_context(request, start_budget(request))
    response = render(request, "dashboard/index.html#live", context, status=status)
    response["HX-Trigger"] = CHANGED_EVENT
    return response
