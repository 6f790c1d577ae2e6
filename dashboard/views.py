"""The dashboard: the page, its live fragment, and the start and cancel actions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from api import limits
from api.clients import may_control
from api.pipeline import allow_methods, count_start_attempt, read_limited, signed_in
from api.starts import start_operation
from dashboard.state import CONTENT_HEADER, STATE_HEADER, Versions, current_versions, live_state
from operations.cancellation import cancel
from operations.exceptions import (
    AdmissionError,
    InvalidParams,
    NoFreeSlot,
    OperationFinished,
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
    owned = {operation.id for operation in live.operations if may_control(request, operation)}
    return {"live": live, "owned": owned}


def start_form_context(kind_name: str, form: Any = None, **extra: Any) -> dict[str, Any]:
    kind = get_kind(kind_name)
    return {
        "kinds": known_kinds(),
        "kind": kind,
        "params_form": form or kind.params_form(),
        **extra,
    }


def chosen_kind(name: str) -> str:
    return name if name in known_kinds() else "simulated"


@allow_methods("GET")
@signed_in
def index(request: HttpRequest) -> HttpResponse:
    """The whole dashboard page."""
    context = live_context(request, start_budget(request)) | start_form_context("simulated")
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
    return render(request, "dashboard/index.html#start-form", start_form_context(kind_name))


@allow_methods("POST")
@signed_in
def start(request: HttpRequest) -> HttpResponse:
    """Start an operation from the form; errors show next to the fields."""
    kind_name = chosen_kind(request.POST.get("kind", ""))
    form = get_kind(kind_name).params_form(request.POST)
    status, extra = 400, {}
    try:
        count_start_attempt(request)  # answered in the form, like every refusal here
        if form.is_valid():  # a form sent back with errors spends no start
            params = {key: value for key, value in form.cleaned_data.items() if value is not None}
            extra = {"started": start_operation(request, kind_name, params).operation}
            status, form = 201, None
    except RateLimited as exc:
        status, extra = 429, {"retry_after": exc.usage.reset_seconds, "error": exc.code}
    except NoFreeSlot as exc:
        status, extra = 429, {"retry_after": exc.retry_after, "error": exc.code}
    except RateLimitUnavailable as exc:
        status, extra = exc.status, {"problem": str(exc)}
    except InvalidParams as exc:
        for field, messages in exc.errors.items():
            form.add_error(field if field in form.fields else None, messages)
    except AdmissionError as exc:
        extra = {"problem": str(exc)}
    context = start_form_context(kind_name, form, **extra)
    response = render(request, "dashboard/index.html#start-form", context, status=status)
    if status == 201:
        response["HX-Trigger"] = CHANGED_EVENT
    return response


@allow_methods("POST")
@signed_in
def cancel_operation(request: HttpRequest, operation_id: Any) -> HttpResponse:
    """Cancel from the dashboard and answer with the refreshed live region."""
    operation = get_object_or_404(Operation, pk=operation_id)
    status = 200
    if not may_control(request, operation):
        status = 403
    else:
        try:
            cancel(operation)
        except OperationFinished as exc:
            status = exc.status
    context = live_context(request, start_budget(request))
    response = render(request, "dashboard/index.html#live", context, status=status)
    response["HX-Trigger"] = CHANGED_EVENT
    return response
