"""The JSON API: start, list, show and cancel operations, and the templates' start endpoints.

Showing an operation may wait for it to change (`?wait=N` with `If-None-Match`),
and a start may wait for it to end (`Prefer: wait=N`; the templates' endpoints
always do, up to TEMPLATES_WAIT_SECONDS). Waiting is done by the ASGI layer
(`api.holds`); under WSGI these answer at once.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.urls import reverse

from api.bodies import json_object
from api.clients import client_key, may_control
from api.errors import with_usage
from api.history import listing_of, page_of
from api.holds import (
    Mode,
    can_hold,
    etag_matches,
    hold,
    preferred_wait,
    recheck_of,
    wait_seconds,
)
from api.pipeline import (
    allow_methods,
    csrf_for_sessions,
    read_limited,
    signed_in,
    start_attempts_limited,
)
from api.shapes import (
    etag_of,
    operation_json,
    operation_summary,
    templates_answer,
)
from api.starts import start_operation
from operations.admission import WHEN_BUSY, WhenBusy
from operations.cancellation import cancel
from operations.exceptions import Forbidden, InvalidRequest, NotFound, OperationEnded
from operations.feed import process_feed
from operations.models import Operation, Status

SEED_DURATION_SECONDS = 2
START_FIELDS = {"kind", "params", "when_busy"}


@allow_methods("GET", "POST")
@csrf_for_sessions
@signed_in
@start_attempts_limited
def operations(request: HttpRequest) -> HttpResponse:
    """GET: a page of operation summaries, newest first. POST {"kind", "params"}: start one.

    `"when_busy": "wait"` in the body puts the start in line for a slot instead of
    answering 429 when none is free (`"refuse"`, the default).
    """
    if request.method == "GET":
        return list_operations(request)
    body = json_object(request)
    unknown = sorted(set(body) - START_FIELDS)
    if unknown:
        raise InvalidRequest(
            f"Unknown field(s) {', '.join(unknown)}; send kind, params and when_busy."
        )
    if "kind" not in body:
        raise InvalidRequest("The body needs a 'kind', e.g. 'simulated'.")
    when_busy = body.get("when_busy", "refuse")
    if when_busy not in WHEN_BUSY:
        raise InvalidRequest('\'when_busy\' is "refuse" (the default) or "wait".')
    wait = preferred_wait(request) if can_hold(request) else 0
    params = body.get("params", {})
    response = started(request, body["kind"], params, wait, "finished", when_busy=when_busy)
    if wait:
        response["Preference-Applied"] = f"wait={wait}"
    return response


def started(
    request: HttpRequest,
    kind: object,
    params: object,
    wait: int = 0,
    mode: Mode = "finished",
    retry_of: Operation | None = None,
    when_busy: WhenBusy = "refuse",
) -> HttpResponse:
    """Start the operation and answer 202 with it and where to watch it.

    With `wait`, the 202 is held until the operation ends (then `mode` answers).
    """
    seen_version = process_feed().current_version() if wait else 0
    start = start_operation(request, kind, params, retry_of, when_busy)
    operation = start.operation
    body = operation_json(request, operation)
    response = JsonResponse(body, status=202, headers={"ETag": etag_of(body)})
    response["Location"] = reverse("operation", args=[operation.id])
    if wait:
        hold(
            response,
            request,
            operation_id=operation.id,
            seconds=wait,
            seen_version=seen_version,
            recheck_path=response["Location"],
            mode=mode,
            client_key=operation.client_key,
        )
    return with_usage(response, start.usage)


@read_limited
def list_operations(request: HttpRequest) -> HttpResponse:
    """A page of summaries, filtered as the query asks (`api.history`), and the pages beside it."""
    page = page_of(request, listing_of(request))
    summaries = [operation_summary(request, operation) for operation in page.operations]
    return JsonResponse({"operations": summaries, "next": page.next_url, "prev": page.prev_url})


@allow_methods("GET")
@signed_in
@read_limited
def operation(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """Show one operation; its params, result and error to its owner and staff only.

    With `If-None-Match` naming what the client shows, answer 304; with `?wait=N`,
    only after N seconds, or at once when the operation changes before.
    """
    recheck = recheck_of(request)
    wait = wait_seconds(request.GET.get("wait"), name="wait")
    holding = can_hold(request) and bool(wait or recheck)
    seen_version = process_feed().current_version() if holding else 0
    found = find(operation_id)
    if recheck and recheck["mode"] != "changed":
        return answer_when_ended(request, found, recheck["mode"], seen_version)
    body = operation_json(request, found)
    etag = etag_of(body)
    # A recheck compares with what the client was shown when held, not with every ETag
    # it listed: a list of predicted ETags must not turn each change into a free read.
    unchanged = etag == recheck["etag"] if recheck else etag_matches(etag, if_none_match(request))
    if not unchanged:
        return JsonResponse(body, headers={"ETag": etag})
    response = HttpResponseNotModified(headers={"ETag": etag})
    if holding:
        hold_for(response, request, found, seen_version, "changed", wait, etag=etag)
    return response


def if_none_match(request: HttpRequest) -> str:
    return request.headers.get("If-None-Match", "")


def answer_when_ended(
    request: HttpRequest, found: Operation, mode: Mode, seen_version: int
) -> HttpResponse:
    """A held start's recheck: the finished operation, or hold on until it ends."""
    if not found.is_finished:
        return hold_for(HttpResponse(status=202), request, found, seen_version, mode)
    if mode == "templates":
        if found.status != Status.COMPLETED:
            raise OperationEnded(found, templates_answer(request, found))
        return JsonResponse(templates_answer(request, found))
    body = operation_json(request, found)
    response = JsonResponse(body, headers={"ETag": etag_of(body)})
    response["Preference-Applied"] = f"wait={preferred_wait(request)}"
    return response


def hold_for(
    response: HttpResponse,
    request: HttpRequest,
    found: Operation,
    seen_version: int,
    mode: Mode,
    seconds: int = 0,
    etag: str = "",
) -> HttpResponse:
    return hold(
        response,
        request,
        operation_id=found.id,
        seconds=seconds,
        seen_version=seen_version,
        recheck_path=request.path,
        mode=mode,
        client_key=client_key(request),
        etag=etag,
    )


@allow_methods("POST")
@csrf_for_sessions
@signed_in
def cancel_operation(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """Cancel an operation this client started (staff may cancel any)."""
    found = find(operation_id)
    if not may_control(request, found):
        raise Forbidden("Only the client that started an operation may cancel it.")
    body = operation_json(request, cancel(found))
    return JsonResponse(body, headers={"ETag": etag_of(body)})


@allow_methods("POST")
@csrf_for_sessions
@signed_in
@start_attempts_limited
def retry_operation(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """Start an operation again, with its kind and params, as a new one recorded as its retry.

    Admitted like any start: the same limits, the same 202 or 429.
    """
    original = find(operation_id)
    if not may_control(request, original):
        raise Forbidden("Only the client that started an operation may retry it.")
    return started(request, original.kind, original.params, retry_of=original)


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
    same limits as every start, and answers as the templates did once it is done:
    200 with the templates' shape, or 202 if it has not ended in TEMPLATES_WAIT_SECONDS
    (a busy or missing worker).
    """
    body = json_object(request)
    params = {"duration": SEED_DURATION_SECONDS, "data": body}
    wait = settings.COORDHUB.templates_wait_seconds if can_hold(request) else 0
    return started(request, "simulated", params, wait, "templates")
