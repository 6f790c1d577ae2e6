"""The dashboard: the page, its live fragment, and the start and cancel actions."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from api import limits
from api.clients import client_key
from api.limits import RateLimitUnavailable
from api.views import may_control
from dashboard.state import Versions, current_versions, live_state
from operations.admission import admit
from operations.cancellation import cancel
from operations.exceptions import AdmissionError, InvalidParams, NoFreeSlot, OperationFinished
from operations.kinds import get_kind, known_kinds
from operations.models import Operation

STATE_HEADER = "X-Coordhub-State"
CONTENT_HEADER = "X-Coordhub-Content"


def signed_in_unless_anonymous_allowed(view: Callable) -> Callable:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.COORDHUB.allow_anonymous and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def start_budget(request: HttpRequest) -> limits.Usage | None:
    try:
        return limits.peek(request, limits.START)
    except RateLimitUnavailable:
        return None


def live_context(
    request: HttpRequest, budget: limits.Usage | None, versions: Versions | None = None
) -> dict[str, Any]:
    return {"live": live_state(budget, versions), "client_key": client_key(request)}


def start_form_context(kind_name: str, form: Any = None, **extra: Any) -> dict[str, Any]:
    kind = get_kind(kind_name)
    return {
        "kinds": known_kinds(),
        "kind": kind,
        "params_form": form or kind.params_form(),
        **extra,
    }


@require_GET
@signed_in_unless_anonymous_allowed
def index(request: HttpRequest) -> HttpResponse:
    """The whole dashboard page."""
    context = live_context(request, start_budget(request)) | start_form_context("simulated")
    return render(request, "dashboard/index.html", context | {"config": settings.COORDHUB})


@require_GET
@signed_in_unless_anonymous_allowed
def live(request: HttpRequest) -> HttpResponse:
    """The live region; 204 when the client already shows this content."""
    try:
        reads = limits.spend(request, limits.READ)
    except RateLimitUnavailable:
        reads = None  # watching keeps working without the cache
    if reads and reads.exceeded:
        return HttpResponse(status=429, headers={"Retry-After": str(reads.reset_seconds)})
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


@require_GET
@signed_in_unless_anonymous_allowed
def start_form(request: HttpRequest) -> HttpResponse:
    """The parameter fields of the chosen kind."""
    kind_name = request.GET.get("kind", "simulated")
    if kind_name not in known_kinds():
        kind_name = "simulated"
    return render(request, "dashboard/index.html#start-form", start_form_context(kind_name))


@require_POST
@signed_in_unless_anonymous_allowed
def start(request: HttpRequest) -> HttpResponse:
    """Start an operation from the form; errors show next to the fields."""
    kind_name = request.POST.get("kind", "")
    if kind_name not in known_kinds():
        kind_name = "simulated"
    kind = get_kind(kind_name)
    form = kind.params_form(request.POST)
    status, extra = 400, {}
    try:
        usage = limits.spend(request, limits.START)
        if usage and usage.exceeded:
            status, extra = 429, {"retry_after": usage.reset_seconds, "error": "rate_limited"}
        elif form.is_valid():
            params = {key: value for key, value in form.cleaned_data.items() if value is not None}
            operation = admit(kind_name, params, client_key=client_key(request), user=request.user)
            status, form = 201, None
            extra = {"started": operation}
    except RateLimitUnavailable as exc:
        status, extra = 503, {"problem": str(exc)}
    except NoFreeSlot as exc:
        status, extra = 429, {"retry_after": exc.retry_after, "error": "concurrency_limit"}
    except InvalidParams as exc:
        for field, messages in exc.errors.items():
            form.add_error(field if field in form.fields else None, messages)
    except AdmissionError as exc:
        extra = {"problem": str(exc)}
    context = start_form_context(kind_name, form, **extra)
    response = render(request, "dashboard/index.html#start-form", context, status=status)
    if status == 201:
        response["HX-Trigger"] = "coordhub:changed"
    return response


@require_POST
@signed_in_unless_anonymous_allowed
def cancel_operation(request: HttpRequest, operation_id: Any) -> HttpResponse:
    """Cancel from the dashboard and answer with the refreshed live region."""
    operation = get_object_or_404(Operation, pk=operation_id)
    status = 200
    if not may_control(request, operation):
        status = 403
    else:
        try:
            cancel(operation)
        except OperationFinished:
            status = 409
    context = live_context(request, start_budget(request))
    response = render(request, "dashboard/index.html#live", context, status=status)
    response["HX-Trigger"] = "coordhub:changed"
    return response
