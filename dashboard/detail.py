"""One operation's page: everything about it, live through the leader tab, with cancel and retry."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from api.clients import may_control
from api.pipeline import allow_methods, count_start_attempt, read_limited, signed_in
from api.starts import start_operation
from dashboard.state import CONTENT_HEADER, STATE_HEADER, Versions, digest
from operations import places
from operations.cancellation import cancel
from operations.exceptions import CoordhubError, NoFreeSlot, OperationFinished, RateLimited
from operations.kinds import shown_result
from operations.models import Operation, Slot, Status

# What the live part of the page shows moves with these; an unchanged poll reads only them.
STATE_FIELDS = ("status", "cancel_requested")
CONTENT_FIELDS = (*STATE_FIELDS, "progress", "message", "finished_at", "started_at")
SLOT_FIELDS = ("number", "lease_version", "lease_expires_at")
RETRIES_SHOWN = 20


def detail_versions(operation_id: uuid.UUID) -> Versions | None:
    """The page's versions from two small queries; None if there is no such operation."""
    row = Operation.objects.filter(pk=operation_id).values_list(*CONTENT_FIELDS).first()
    if row is None:
        return None
    slot = Slot.objects.filter(operation_id=operation_id).values_list(*SLOT_FIELDS).first()
    state = digest([str(value) for value in row[: len(STATE_FIELDS)]] + [f"slot:{bool(slot)}"])
    content = digest([state, *map(str, row), f"slot:{slot}"])
    return Versions(state, content)


def duration_text(length: timedelta | None) -> str:
    """ "0.4 s", "12 s", "3 min 5 s", "2 h 10 min": to the second, in plain words."""
    if length is None:
        return "—"
    seconds = max(0.0, length.total_seconds())
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, seconds_left = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds_left} s"
    return f"{seconds_left} s"


def pretty_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def between(start: datetime | None, end: datetime | None, now: datetime) -> timedelta | None:
    """From `start` to `end`, or to now while `end` has not come; None before `start`."""
    if start is None:
        return None
    return (end or now) - start


@dataclass
class Detail:
    """What the page shows of `operation` to this client."""

    operation: Operation
    visible: bool  # params, result and error: the operation's owner and staff
    staff: bool
    slot: Slot | None
    versions: Versions
    now: datetime = field(default_factory=timezone.now)

    @property
    def queued_for(self) -> str:
        """From its slot until a worker started it (or until now, or until it ended unstarted).

        An operation that waited in line took its slot when its wait ended.
        """
        operation = self.operation
        took_slot = operation.created_at + timedelta(seconds=operation.waited_seconds or 0)
        end = operation.started_at or operation.finished_at
        return duration_text(between(took_slot, end, self.now))

    @property
    def place(self) -> places.Place | None:
        """Its place in line while it waits."""
        if self.operation.status != Status.WAITING:
            return None
        return places.place_of(self.operation)

    @property
    def waited_for(self) -> str | None:
        """How long it waited in line for its slot, once it got one."""
        waited = self.operation.waited_seconds
        return None if waited is None else duration_text(timedelta(seconds=waited))

    @property
    def ran_for(self) -> str:
        operation = self.operation
        return duration_text(between(operation.started_at, operation.finished_at, self.now))

    @property
    def params_json(self) -> str:
        return pretty_json(self.operation.params)

    @property
    def result_json(self) -> str | None:
        operation = self.operation
        result = shown_result(operation.kind, operation.params, operation.result)
        return None if result is None else pretty_json(result)

    @property
    def messages(self) -> list[tuple[datetime | None, str]]:
        """The last few progress messages with their times, oldest first."""
        entries = self.operation.message_history or []
        return [(parse_datetime(entry["at"]), entry["message"]) for entry in entries]

    @property
    def may_cancel(self) -> bool:
        return self.visible and not self.operation.is_finished

    @property
    def rendered_at(self) -> int:
        return int(self.now.timestamp() * 1000)


def detail_of(
    request: HttpRequest, operation_id: uuid.UUID, versions: Versions | None = None
) -> Detail:
    """What the page shows; `versions` (taken now if not given) come before the rows, as in
    dashboard.state.live_state."""
    versions = versions or detail_versions(operation_id)
    operation = get_object_or_404(Operation.objects.select_related("user"), pk=operation_id)
    slot = Slot.objects.filter(operation_id=operation_id).first()
    staff = bool(request.user.is_authenticated and request.user.is_staff)
    visible = may_control(request, operation)
    return Detail(operation, visible, staff, slot, versions or Versions("", ""))


def page_context(request: HttpRequest, detail: Detail, **extra: object) -> dict[str, object]:
    operation = detail.operation
    retries = operation.retries.only("id", "status", "created_at").order_by("created_at")
    return {
        "detail": detail,
        "op": operation,
        "retries": list(retries[:RETRIES_SHOWN]),
        "config": settings.COORDHUB,
        # This operation's tabs share a leader, apart from the dashboard's.
        "namespace_suffix": f":operation-{operation.id}",
        **extra,
    }


def with_versions(response: HttpResponse, versions: Versions) -> HttpResponse:
    response[STATE_HEADER], response[CONTENT_HEADER] = versions.state, versions.content
    return response


@allow_methods("GET")
@signed_in
def operation_page(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """The whole page."""
    detail = detail_of(request, operation_id)
    return render(request, "dashboard/operation.html", page_context(request, detail))


@allow_methods("GET")
@signed_in
@read_limited
def operation_live(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """The page's live part; 204 when the client already shows this content."""
    versions = detail_versions(operation_id)
    if versions is None:
        return HttpResponse("There is no such operation.", status=404)
    if request.headers.get(CONTENT_HEADER) == versions.content:
        return with_versions(HttpResponse(status=204), versions)
    detail = detail_of(request, operation_id, versions)
    response = render(request, "dashboard/operation.html#live", {"detail": detail})
    return with_versions(response, detail.versions)


def cancel_for(request: HttpRequest, operation_id: uuid.UUID) -> int:
    """Cancel the operation for this client; the status to answer with (403, 409 or 200)."""
    operation = get_object_or_404(Operation, pk=operation_id)
    if not may_control(request, operation):
        return 403
    try:
        cancel(operation)
    except OperationFinished as exc:
        return exc.status
    return 200


@allow_methods("POST")
@signed_in
def cancel_from_page(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """Cancel, and answer with the page's refreshed live part."""
    status = cancel_for(request, operation_id)
    detail = detail_of(request, operation_id)
    response = render(request, "dashboard/operation.html#live", {"detail": detail}, status=status)
    return with_versions(response, detail.versions)


@allow_methods("POST")
@signed_in
def retry(request: HttpRequest, operation_id: uuid.UUID) -> HttpResponse:
    """Start the operation again as a new one, through admission; see the new one's page.

    A refusal shows on this page, and spends nothing.
    """
    original = get_object_or_404(Operation, pk=operation_id)
    if not may_control(request, original):
        return refused(request, original, "Only the client that started it may retry it.", 403)
    try:
        count_start_attempt(request)
        new = start_operation(request, original.kind, original.params, original).operation
    except RateLimited as exc:
        text = f"Start limit reached: you can start again in {exc.usage.reset_seconds} s."
        return refused(request, original, text, 429)
    except NoFreeSlot as exc:
        text = f"All slots are busy: a slot is expected to free in about {exc.retry_after} s."
        return refused(request, original, text, 429)
    except CoordhubError as exc:  # its kind refuses its params now; the limiter is down
        return refused(request, original, str(exc), exc.status)
    return redirect("operation-detail", operation_id=new.id)


def refused(request: HttpRequest, original: Operation, text: str, status: int) -> HttpResponse:
    detail = detail_of(request, original.pk)
    context = page_context(request, detail, retry_refused=text)
    return render(request, "dashboard/operation.html", context, status=status)
