"""How the admin shows operations and slots: times to the second, durations, JSON, links.

Nothing here reads a request, so the admin's pages share it with its actions' messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, time_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from operations.models import Operation, Slot


def operation_links(operations: list[Operation]) -> SafeString:
    """Comma-separated links to the operations' admin pages, by short id."""
    return format_html_join(
        ", ",
        '<a href="{}">{}</a>',
        (
            (reverse("admin:operations_operation_change", args=[operation.pk]), operation.short_id)
            for operation in operations
        ),
    )


def empty() -> str:
    """The admin's dash for no value (its change form would print a method's None)."""
    return admin.site.empty_value_display


def to_the_second(moment: datetime | None) -> str:
    """The locale's date and the local time with seconds (Django's default drops them)."""
    if moment is None:
        return empty()
    local = timezone.localtime(moment)
    return f"{date_format(local)}, {time_format(local, 'H:i:s')}"


def seconds_column(field: str, description: str) -> Callable[[object, Model], str]:
    """A column (and read-only field) showing a row's time `field` to the second."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: object, row: Model) -> str:
        return to_the_second(getattr(row, field))

    return column


def duration_text(seconds: float) -> str:
    """Tenths of a second under a minute (12.3 s), then 4 min 05 s, from an hour 2 h 03 min."""
    tenths = round(max(seconds, 0.0) * 10)
    if tenths < 600:
        return f"{tenths / 10:.1f} s"
    minutes, seconds_left = divmod(round(tenths / 10), 60)
    if minutes < 60:
        return f"{minutes} min {seconds_left:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def pretty_json(value: Any) -> SafeString:
    """Indented JSON in a <pre>, escaped (user data), keys sorted: jsonb keeps no order."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


class OperationColumns:
    """The columns and read-only fields of an operation that are not plain model fields."""

    @admin.display(description="id", ordering="id")
    def short_id(self, operation: Operation) -> str:
        return operation.short_id

    @admin.display(description="progress", ordering="progress")
    def progress_percent(self, operation: Operation) -> str:
        return f"{operation.progress}%"

    @admin.display(description="params")
    def params_json(self, operation: Operation) -> SafeString:
        return pretty_json(operation.params)

    @admin.display(description="result")
    def result_json(self, operation: Operation) -> str:
        return empty() if operation.result is None else pretty_json(operation.result)

    created = seconds_column("created_at", "created")
    started = seconds_column("started_at", "started")
    finished = seconds_column("finished_at", "finished")

    @admin.display(description="duration", ordering="run_time")
    def duration(self, operation: Operation) -> str:
        """Finished less started; a running operation's time so far; none before it starts."""
        if operation.started_at is None:
            return empty()
        if operation.finished_at is None:
            elapsed = timezone.now() - operation.started_at
            return f"running for {duration_text(elapsed.total_seconds())}"
        return duration_text((operation.finished_at - operation.started_at).total_seconds())

    @admin.display(description="slot")
    def held_slot(self, operation: Operation) -> str:
        slot = Slot.objects.filter(operation=operation).first()
        if slot is None:
            return empty()
        url = reverse("admin:operations_slot_change", args=[slot.pk])
        return format_html('<a href="{}">{}</a>', url, slot)


class SlotColumns:
    """A slot's holder as a link, its lease times to the second, whether the lease ran out."""

    @admin.display(description="holder", ordering="operation")
    def holder(self, slot: Slot) -> str:
        if slot.operation is None:
            return empty()
        url = reverse("admin:operations_operation_change", args=[slot.operation.pk])
        return format_html('<a href="{}">{}</a>', url, slot.operation)

    lease_expires = seconds_column("lease_expires_at", "lease expires")
    claimed = seconds_column("claimed_at", "claimed")

    @admin.display(description="expired", boolean=True)
    def expired(self, slot: Slot) -> bool:
        return slot.operation_id is not None and slot.is_expired()
