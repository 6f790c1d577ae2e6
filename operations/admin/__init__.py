"""The admin: inspect, cancel and retry operations; inspect and force-release slots.

Both tables change only through the engine (admission, cancellation, fenced slot
release), never by editing rows, so every change form is read-only. How their
columns read (times to the second, durations, JSON) is in `columns`.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import ngettext
from django_tasks_db.models import DBTaskResult

from operations import apikeys, counters, line, outcomes
from operations.admin.columns import OperationColumns, SlotColumns, operation_links
from operations.admission import admit
from operations.cancellation import cancel
from operations.exceptions import AdmissionError, NoFreeSlot, OperationFinished
from operations.models import ApiKey, Operation, Slot, SlotQuerySet
from operations.slots import Hold

LIST_AND_FORM = [admin.ActionLocation.CHANGE_LIST, admin.ActionLocation.CHANGE_FORM]

# Operations are the one list: each task row belongs to an operation, whose page says more.
if admin.site.is_registered(DBTaskResult):
    admin.site.unregister(DBTaskResult)


@admin.register(Operation)
class OperationAdmin(OperationColumns, admin.ModelAdmin):
    list_display = [
        "short_id",
        "kind",
        "status",
        "progress_percent",
        "client_key",
        "user",
        "created",
        "started",
        "finished",
        "duration",
    ]
    list_filter = ["status", "kind", ("created_at", admin.DateFieldListFilter)]
    date_hierarchy = "created_at"
    search_fields = ["id", "kind", "client_key", "error"]
    list_select_related = ["user"]
    fieldsets = [
        (None, {"fields": ["id", "kind", "status", "progress", "message", "cancel_requested"]}),
        ("Input and outcome", {"fields": ["params_json", "result_json", "error", "traceback"]}),
        ("Origin", {"fields": ["client_key", "user", "retry_of", "task_id", "held_slot"]}),
        ("Times", {"fields": ["created", "started", "finished", "duration"]}),
        (
            "Line",
            {"fields": ["wait_reason", "waited_seconds", "moved_to_front_at", "concurrency_key"]},
        ),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    actions = ["cancel_operations", "retry_operations", "move_to_front"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Operation]:
        # The duration column sorts on this; operations not yet finished have none.
        return super().get_queryset(request).annotate(run_time=F("finished_at") - F("started_at"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # operations start through admission only ("Retry as new operations")

    def has_change_permission(self, request: HttpRequest, obj: Operation | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Operation | None = None) -> bool:
        # An active operation holds a slot and a queued task: it ends by cancellation.
        # "Delete selected" checks each operation, so it refuses a selection with active ones.
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_finished)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("operations.change_operation")

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("operations.add_operation")

    @admin.action(
        description="Cancel this operation",
        description_plural="Cancel selected operations",
        permissions=["cancel"],
        location=LIST_AND_FORM,
    )
    def cancel_operations(self, request: HttpRequest, queryset) -> None:
        cancelled, stopping, ended = [], [], []
        for operation in queryset:
            try:
                operation = cancel(operation)
            except OperationFinished:
                ended.append(operation)
                continue
            if operation.is_finished:
                cancelled.append(operation)
                self.log_change(request, operation, "Cancelled in the admin.")
            else:
                stopping.append(operation)
                self.log_change(request, operation, "Cancellation requested in the admin.")
        if cancelled:
            count = len(cancelled)
            self.message_user(
                request,
                ngettext(
                    "Cancelled %(count)d queued operation.",
                    "Cancelled %(count)d queued operations.",
                    count,
                )
                % {"count": count},
                messages.SUCCESS,
            )
        if stopping:
            count = len(stopping)
            self.message_user(
                request,
                ngettext(
                    "Requested cancellation of %(count)d running operation; "
                    "its worker stops it at its next check.",
                    "Requested cancellation of %(count)d running operations; "
                    "their workers stop them at their next check.",
                    count,
                )
                % {"count": count},
                messages.SUCCESS,
            )
        if ended:
            count = len(ended)
            text = ngettext(
                "%(count)d operation had already ended and was left as it was:",
                "%(count)d operations had already ended and were left as they were:",
                count,
            ) % {"count": count}
            self.message_user(
                request, format_html("{} {}.", text, operation_links(ended)), messages.WARNING
            )

    @admin.action(
        description="Move to the front of the line",
        description_plural="Move selected waiting operations to the front of the line",
        permissions=["cancel"],
        location=LIST_AND_FORM,
    )
    def move_to_front(self, request: HttpRequest, queryset) -> None:
        moved = line.move_to_front(queryset)
        for operation in moved:
            self.log_change(request, operation, "Moved to the front of the line in the admin.")
        left = queryset.count() - len(moved)
        if moved:
            count = len(moved)
            text = ngettext(
                "Moved %(count)d waiting operation to the front of the line.",
                "Moved %(count)d waiting operations to the front of the line.",
                count,
            ) % {"count": count}
            self.message_user(request, text, messages.SUCCESS)
        if left:
            self.message_user(
                request,
                ngettext(
                    "%(count)d operation was not waiting and was left as it was.",
                    "%(count)d operations were not waiting and were left as they were.",
                    left,
                )
                % {"count": left},
                messages.WARNING,
            )

    @admin.action(
        description="Retry as a new operation",
        description_plural="Retry as new operations",
        permissions=["retry"],
        location=LIST_AND_FORM,
    )
    def retry_operations(self, request: HttpRequest, queryset) -> None:
        started = []
        # Oldest first: when slots run short, the longest-waiting work gets them.
        for operation in queryset.order_by("created_at"):
            try:
                new = admit(
                    operation.kind,
                    operation.params,
                    client_key=operation.client_key,
                    user=request.user,
                    retry_of=operation,
                )
            except AdmissionError as refusal:
                level = messages.WARNING if isinstance(refusal, NoFreeSlot) else messages.ERROR
                self.message_user(
                    request, f"Operation {operation.short_id} was not retried: {refusal}", level
                )
                continue
            self.log_addition(request, new, f"Retried operation {operation.pk} in the admin.")
            started.append(new)
        if started:
            count = len(started)
            text = ngettext(
                "Started %(count)d new operation:",
                "Started %(count)d new operations:",
                count,
            ) % {"count": count}
            self.message_user(
                request, format_html("{} {}.", text, operation_links(started)), messages.SUCCESS
            )


@admin.register(Slot)
class SlotAdmin(SlotColumns, admin.ModelAdmin):
    list_display = ["number", "holder", "lease_version", "lease_expires", "claimed", "expired"]
    list_select_related = ["operation"]
    fields = list_display
    readonly_fields = list_display
    actions = ["force_release"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the slot table is kept by operations.slots.ensure_slots

    def has_change_permission(self, request: HttpRequest, obj: Slot | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Slot | None = None) -> bool:
        return False

    def has_force_release_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("operations.change_slot")

    @admin.action(description="Force release selected slots", permissions=["force_release"])
    def force_release(
        self, request: HttpRequest, queryset: SlotQuerySet
    ) -> TemplateResponse | None:
        if request.POST.get("post") == "yes":
            self.release_confirmed(request, queryset)
            return None
        held = list(queryset.held().select_related("operation"))
        if not held:
            self.message_user(
                request,
                "None of the selected slots is held, so there is nothing to release.",
                messages.WARNING,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Force release slots",
            "subtitle": None,
            "held": held,
            "free": list(queryset.filter(operation__isnull=True)),
            "opts": self.opts,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/operations/slot/force_release_confirmation.html", context
        )

    def release_confirmed(self, request: HttpRequest, queryset: SlotQuerySet) -> None:
        """Release each slot still held under the lease the confirmation page showed."""
        released, failed, left_alone = [], 0, []
        for slot in queryset:
            # The page carries each lease version it showed: a slot that has since passed to
            # another operation (or come free) is not released behind the admin's back.
            shown = request.POST.get(f"lease_version_{slot.number}", str(slot.lease_version))
            if slot.operation_id is None or shown != str(slot.lease_version):
                left_alone.append(slot)
                continue
            with transaction.atomic(), counters.counted():
                if not line.release(Hold(slot.number, slot.operation_id, slot.lease_version)):
                    left_alone.append(slot)
                    continue
                ended = outcomes.fail_force_released(slot.operation_id, request.user.get_username())
            failed += ended
            released.append(slot)
            self.log_change(
                request,
                slot,
                f"Force-released from operation {slot.operation_id} "
                f"(lease version {slot.lease_version}).",
            )
        if released:
            count = len(released)
            text = ngettext(
                "Force-released %(count)d slot",
                "Force-released %(count)d slots",
                count,
            ) % {"count": count}
            text += ngettext(
                "; %(failed)d operation was marked failed.",
                "; %(failed)d operations were marked failed.",
                failed,
            ) % {"failed": failed}
            self.message_user(request, text, messages.SUCCESS)
        if left_alone:
            numbers = ", ".join(str(slot.number) for slot in left_alone)
            self.message_user(
                request,
                f"Left alone, because they were free or changed hands after the confirmation "
                f"page was shown: slot {numbers}.",
                messages.WARNING,
            )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Create keys (the secret is shown once), see their use, revoke them."""

    list_display = ["name", "prefix", "user", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return ["user", "name"]
        return ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        return ["user", "prefix", "created_at", "last_used_at"]

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "user" and not may_issue_for_others(request):
            kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
            kwargs["initial"] = request.user.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        if obj.user_id != request.user.pk and not may_issue_for_others(request):
            # The form offers no one else; this refuses a crafted form too.
            raise PermissionDenied("Only a superuser or a user manager issues keys for others.")
        key, secret = apikeys.issue(obj.user, obj.name)
        for field in ("pk", "prefix", "digest", "created_at"):
            setattr(obj, field, getattr(key, field))
        self.message_user(
            request,
            format_html(
                "The key's secret is <code>{}</code>. Copy it now: it is not stored and "
                "will not be shown again.",
                secret,
            ),
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset) -> None:
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {revoked} key(s); they fail from the next request.")


def may_issue_for_others(request: HttpRequest) -> bool:
    """A key acts as its user, so only who may change users (superusers do) picks another."""
    return request.user.has_perm("auth.change_user")
