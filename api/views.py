"""The JSON API: start, list, show and cancel operations, and the templates' start endpoints."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from api.bodies import json_object
from api.clients import may_control
from api.errors import with_usage
from api.pipeline import (
    allow_methods,
    csrf_for_sessions,
    read_limited,
    signed_in,
    start_attempts_limited,
)
from api.shapes import PRIVATE_FIELDS, operation_json, operation_summary
from api.starts import start_operation
from operations.cancellation import cancel
from operations.exceptions import Forbidden, InvalidRequest, NotFound
from operations.models import Operation

RECENT_OPERATIONS = 50
SEED_DURATION_SECONDS = 2
START_FIELDS = {"kind", "params"}


@allow_methods("GET", "POST")
@csrf_for_sessions
@signed_in
@start_attempts_limited
def operations(request: HttpRequest) -> HttpResponse:
    """GET: summaries of recent operations, newest first. POST {"kind", "params"}: start one."""
    if request.method == "GET":
        return list_operations(request)
    body = json_object(request)
    unknown = sorted(set(body) - START_FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown field(s) {', '.join(unknown)}; send kind and params.")
    if "kind" not in body:
        raise InvalidRequest("The body needs a 'kind', e.g. 'simulated'.")
    return started(request, body["kind"], body.get("params", {}))


def started(request: HttpRequest, kind: object, params: object) -> HttpResponse:
    """Start the operation and answer 202 with it and where to watch it."""
    start = start_operation(request, kind, params)
    response = JsonResponse(operation_json(request, start.operation), status=202)
    response["Location"] = reverse("operation", args=[start.operation.id])
    return with_usage(response, start.usage)


@read_limited
def list_operations(request: HttpRequest) -> HttpResponse:
    # Summaries leave the private, unbounded fields out: do not even read them.
    recent = Operation.objects.all().defer(*PRIVATE_FIELDS)[:RECENT_OPERATIONS]
    summaries = [operation_summary(request, operation) for operation in recent]
    return JsonResponse({"operations": summaries})


@allow_methods("GET")
@signed_in
@read_limited
def operation(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """Show one operation; its params, result and error to its owner and staff only."""
    return JsonResponse(operation_json(request, find(operation_id)))


@allow_methods("POST")
@csrf_for_sessions
@signed_in
def cancel_operation(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """Cancel an operation this client started (staff may cancel any)."""
    found = find(operation_id)
    if not may_control(request, found):
        raise Forbidden("Only the client that started an operation may cancel it.")
    return JsonResponse(operation_json(request, cancel(found)))


def find(operation_id: uuid.UUID) -> Operation:
    found = Operation.objects.filter(pk=operation_id).first()
    if found is None:
        raise NotFound(f"There is no operation {operation_id}.")
    return found


@allow_methods("POST")
@csrf_for_sessions
@signed_in
@start_attempts_limited
def templates_start(request: HttpRequest) -> HttpResponse:
    """The templates' protected-operation and resource-intensive-operation endpoints.

    Any JSON object starts a 2-second simulated operation carrying it, under the
    same limits as every start.
    """
    body = json_object(request)
    return started(request, "simulated", {"duration": SEED_DURATION_SECONDS, "data": body})
