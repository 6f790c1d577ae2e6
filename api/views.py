"""The JSON API: start, list, show and cancel operations; health and reports."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from api import limits
from api.clients import client_key
from api.limits import RateLimitUnavailable
from api.responses import (
    BadRequest,
    allow_methods,
    error_for,
    json_error,
    rate_limited,
    with_usage,
)
from operations.admission import admit
from operations.cancellation import cancel
from operations.exceptions import CoordhubError
from operations.models import Operation

RECENT_OPERATIONS = 50
SEED_DURATION_SECONDS = 2


def signed_in_unless_anonymous_allowed(view: Callable) -> Callable:
    """Answer 401 when anonymous use is off and the client has neither session nor key."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.COORDHUB.allow_anonymous and not request.user.is_authenticated:
            return json_error(
                "authentication_required",
                "Sign in, or send an API key as 'Authorization: Bearer <key>'.",
                401,
                headers={"WWW-Authenticate": 'Bearer realm="coordhub"'},
            )
        return view(request, *args, **kwargs)

    return wrapper


class SessionCsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        return json_error("csrf_failed", f"CSRF check failed: {reason}", 403)


def csrf_for_sessions(view: Callable) -> Callable:
    """Check CSRF on session-signed-in requests only.

    API-key and anonymous requests carry no session for a forged page to ride
    on, and a cross-site page cannot send application/json without a CORS
    preflight, which coordhub never grants.
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        session_user = request.user.is_authenticated and not hasattr(request, "api_key")
        if session_user and request.method not in ("GET", "HEAD", "OPTIONS"):
            check = SessionCsrfCheck(lambda request: HttpResponse())
            check.process_request(request)
            rejection = check.process_view(request, None, (), {})
            if rejection is not None:
                return rejection
        return view(request, *args, **kwargs)

    return wrapper


def read_limited(view: Callable) -> Callable:
    """Count a read against the client's read budget; a failed cache never blocks reads."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            usage = limits.spend(request, limits.READ)
        except RateLimitUnavailable:
            usage = None
        if usage and usage.exceeded:
            return rate_limited(usage)
        return view(request, *args, **kwargs)

    return wrapper


def parse_json_object(request: HttpRequest) -> dict[str, Any]:
    """Return the request body as a JSON object, or raise BadRequest saying what is wrong."""
    if request.content_type != "application/json":
        raise BadRequest(
            "unsupported_media_type",
            f"Send the body as application/json, not {request.content_type or 'nothing'!r}.",
            415,
        )
    try:
        body = request.body
    except RequestDataTooBig as exc:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
        raise BadRequest("payload_too_large", f"The body is larger than {limit} KiB.", 413) from exc
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest("invalid_json", f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise BadRequest("invalid_json", f"The body must be a JSON object, not {json_type(data)}.")
    return data


def json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def start(request: HttpRequest, kind: object, params: object) -> HttpResponse:
    """Spend a start from the client's budget, then admit the operation."""
    try:
        usage = limits.spend(request, limits.START)
    except RateLimitUnavailable as exc:  # fail closed: the limits protect a quota
        return error_for(exc)
    if usage and usage.exceeded:
        return rate_limited(usage)
    try:
        operation = admit(kind, params, client_key=client_key(request), user=request.user)
    except CoordhubError as exc:
        return with_usage(error_for(exc), usage)
    response = JsonResponse(operation.as_json(), status=202)
    response["Location"] = reverse("operation", args=[operation.id])
    return with_usage(response, usage)


@csrf_for_sessions
@allow_methods("GET", "POST")
@signed_in_unless_anonymous_allowed
def operations(request: HttpRequest) -> HttpResponse:
    """GET: recent operations, newest first. POST {"kind", "params"}: start one."""
    if request.method == "GET":
        return list_operations(request)
    try:
        body = parse_json_object(request)
    except BadRequest as exc:
        return error_for(exc)
    unknown = sorted(set(body) - {"kind", "params"})
    if unknown:
        return json_error(
            "invalid_request", f"Unknown field(s) {', '.join(unknown)}; send kind and params.", 400
        )
    if "kind" not in body:
        return json_error("invalid_request", "The body needs a 'kind', e.g. 'simulated'.", 400)
    return start(request, body["kind"], body.get("params", {}))


@read_limited
def list_operations(request: HttpRequest) -> HttpResponse:
    recent = Operation.objects.all()[:RECENT_OPERATIONS]
    return JsonResponse({"operations": [operation.as_json() for operation in recent]})


@allow_methods("GET")
@signed_in_unless_anonymous_allowed
@read_limited
def operation(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """Show one operation."""
    found = Operation.objects.filter(pk=operation_id).first()
    return JsonResponse(found.as_json()) if found else no_such_operation(operation_id)


def no_such_operation(operation_id: uuid.UUID) -> JsonResponse:
    return json_error("not_found", f"There is no operation {operation_id}.", 404)


@csrf_for_sessions
@allow_methods("POST")
@signed_in_unless_anonymous_allowed
def cancel_operation(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """Cancel an operation this client started (staff may cancel any)."""
    found = Operation.objects.filter(pk=operation_id).first()
    if found is None:
        return no_such_operation(operation_id)
    if not may_control(request, found):
        return json_error(
            "forbidden", "Only the client that started an operation may cancel it.", 403
        )
    try:
        return JsonResponse(cancel(found).as_json())
    except CoordhubError as exc:
        return error_for(exc)


def may_control(request: HttpRequest, operation: Operation) -> bool:
    user = request.user
    if user.is_authenticated and (user.is_staff or operation.user_id == user.pk):
        return True
    return operation.client_key == client_key(request)


@csrf_for_sessions
@allow_methods("POST")
@signed_in_unless_anonymous_allowed
def protected_operation(request: HttpRequest) -> HttpResponse:
    """The seed's endpoint: any JSON object starts a 2-second simulated operation."""
    try:
        body = parse_json_object(request)
    except BadRequest as exc:
        return error_for(exc)
    return start(request, "simulated", {"duration": SEED_DURATION_SECONDS, "data": body})


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """JSON 404 under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return json_error("not_found", f"Nothing at {request.path}.", 404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
