"""What the JSON API shows of an operation, and to whom.

Everyone allowed in sees an operation's id, kind, status, progress, message and
times; only its owner and staff (`api.clients.may_control`) see its params,
result and error. The engine stores; this module decides what an answer carries.
"""

from __future__ import annotations

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest
from django.urls import reverse

from api.clients import may_control
from operations import places
from operations.kinds import shown_result
from operations.models import Operation, Status, iso

PRIVATE_FIELDS = ("params", "result", "error")
# Never read for a summary row: the private fields and the other unbounded ones.
UNSUMMARISED_FIELDS = (*PRIVATE_FIELDS, "message_history", "traceback")


def public_fields(operation: Operation) -> dict[str, object]:
    """What every signed-in client may see of `operation`."""
    return {
        "id": str(operation.id),
        "kind": operation.kind,
        "status": operation.status,
        "progress": operation.progress,
        # Progress messages are public: kinds must not write private data into them.
        "message": operation.message,
        "created_at": iso(operation.created_at),
        "started_at": iso(operation.started_at),
        "finished_at": iso(operation.finished_at),
        "retry_of": str(operation.retry_of_id) if operation.retry_of_id else None,
    }


def operation_json(request: HttpRequest, operation: Operation) -> dict[str, object]:
    """The whole operation; params, result and error are null unless the client may see them."""
    visible = may_control(request, operation)
    private = {
        "params": operation.params,
        "result": shown_result(operation.kind, operation.params, operation.result),
        "error": operation.error or None,
    }
    if not visible:
        private = dict.fromkeys(PRIVATE_FIELDS)
    # The last few messages with their times: public, like the message itself.
    messages = {"messages": operation.message_history}
    shown = public_fields(operation) | messages | {"line": line_json(operation)}
    return shown | private | {"details_visible": visible}


def line_json(operation: Operation) -> dict[str, object] | None:
    """Its place in the line while it waits, and how long it waited once it has a slot."""
    if operation.status == Status.WAITING:
        place = places.place_of(operation)
        return {
            "position": place.position if place else None,
            "of": place.of if place else None,
            "expected_start_in_seconds": place.expected_in_seconds if place else None,
            "waiting_because": operation.wait_reason,
        }
    if operation.waited_seconds is not None:
        return {"waited_seconds": round(operation.waited_seconds, 3)}
    return None


def operation_summary(request: HttpRequest, operation: Operation) -> dict[str, object]:
    """A row of the list: bounded in size, whatever the params; `url` leads to the whole."""
    return public_fields(operation) | {
        "details_visible": may_control(request, operation),
        "url": reverse("operation", args=[operation.id]),
    }


def etag_of(body: dict[str, object]) -> str:
    """An ETag for an answer's JSON body: it changes with anything the answer shows.

    Except a waiting operation's expected start, which moves with the clock rather
    than with the operation: a client waiting for a change (`?wait=N`) would else be
    answered at once, every time.
    """
    place = body.get("line")
    if isinstance(place, dict) and "expected_start_in_seconds" in place:
        steady = {key: value for key, value in place.items() if key != "expected_start_in_seconds"}
        body = body | {"line": steady}
    encoded = json.dumps(body, sort_keys=True, cls=DjangoJSONEncoder).encode()
    return '"' + hashlib.blake2b(encoded, digest_size=12).hexdigest() + '"'


def templates_answer(request: HttpRequest, operation: Operation) -> dict[str, object]:
    """An ended start as the templates' protected-operation endpoint answered it."""
    shown = operation_json(request, operation)
    answer: dict[str, object] = {
        "operation_id": str(operation.id),
        "status": operation.status,
        "result": None,
        "timestamp": iso(operation.finished_at),
    }
    if operation.status == Status.COMPLETED and shown["details_visible"]:
        ran_for = (operation.finished_at - operation.started_at).total_seconds()
        data = (shown["result"] or {}).get("processed_data", {})
        answer["result"] = {
            "processed_data": data,
            "processing_time": round(ran_for, 3),
            "status": "success",
        }
    elif shown["error"]:
        answer["error"] = shown["error"]
    return answer
