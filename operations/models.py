"""Operations, the slot table that caps how many run at once, and lifetime counters."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

# Workers beat every few seconds; a short lease must not make a busy worker look dead.
LIVENESS_FLOOR_SECONDS = 15


class Status(models.TextChoices):
    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (Status.WAITING, Status.QUEUED, Status.RUNNING)
# Those that hold a slot: a waiting operation holds nothing.
HOLDING_STATUSES = (Status.QUEUED, Status.RUNNING)
FINISHED_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


class OperationQuerySet(models.QuerySet["Operation"]):
    def active(self) -> OperationQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)

    def holding(self) -> OperationQuerySet:
        return self.filter(status__in=HOLDING_STATUSES)

    def waiting(self) -> OperationQuerySet:
        return self.filter(status=Status.WAITING)

    def finished(self) -> OperationQuerySet:
        return self.filter(status__in=FINISHED_STATUSES)

    def finished_before(self, moment: datetime) -> OperationQuerySet:
        return self.finished().filter(finished_at__lt=moment)

    def finish(self, status: Status, **fields: object) -> int:
        """End the active operations in this queryset; return how many ended."""
        return self.active().update(status=status, finished_at=timezone.now(), **fields)


class Operation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=200, blank=True)
    # The last few messages with their times, oldest first: [{"at": iso, "message": str}].
    message_history = models.JSONField(default=list, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Where a kind's own exception was raised; shown to staff only.
    traceback = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    client_key = models.CharField(max_length=128, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    retry_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retries",
        help_text="The operation this one retries.",
    )
    task_id = models.UUIDField(null=True, blank=True, help_text="The task backend's id.")
    # The line: why it waited (the refusal it would have had), for how long, and when
    # staff moved it to the front.
    wait_reason = models.CharField(max_length=32, blank=True)
    # Its kind's concurrency key from its params ("" for none): the per-key cap counts these.
    concurrency_key = models.CharField(max_length=200, blank=True)
    waited_seconds = models.FloatField(null=True, blank=True)
    moved_to_front_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = OperationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Running and queued ones, newest first (and every filter on status alone).
            models.Index(fields=["status", "created_at"], name="operation_status_recent_idx"),
            # The newest finished ones are read through created_at's own index: see
            # dashboard.state.ordered_operations.
            # A kind's last completed operations, newest first: the refusal's estimate.
            models.Index(
                fields=["kind", "status", "finished_at"], name="operation_kind_recent_idx"
            ),
            # One client's operations, newest first: the history's `client` filter.
            models.Index(fields=["client_key", "created_at"], name="operation_client_recent_idx"),
            # The latest waits, for the reports' percentiles.
            models.Index(
                fields=["-created_at"],
                condition=Q(waited_seconds__isnull=False),
                name="operation_waited_idx",
            ),
            # The line, and one client's place in it.
            models.Index(
                fields=["client_key", "created_at"],
                condition=Q(status="waiting"),
                name="operation_waiting_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.short_id} ({self.status})"

    @property
    def short_id(self) -> str:
        return str(self.id)[:8]

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class SlotQuerySet(models.QuerySet["Slot"]):
    def held(self) -> SlotQuerySet:
        return self.filter(operation__isnull=False)

    def claimable(self, now: datetime) -> SlotQuerySet:
        """Free slots, and held slots whose lease has run out."""
        return self.filter(Q(operation__isnull=True) | Q(lease_expires_at__lt=now))

    def expired(self, now: datetime) -> SlotQuerySet:
        return self.held().filter(lease_expires_at__lt=now)

    def in_service(self, limit: int) -> SlotQuerySet:
        return self.filter(number__lte=limit)

    def retired(self, limit: int) -> SlotQuerySet:
        """Slots above the configured count, left by a limit that was lowered."""
        return self.filter(number__gt=limit)

    def held_by(self, operation_id: uuid.UUID | str, lease_version: int) -> SlotQuerySet:
        """The slot as long as it still belongs to this holder: the fence."""
        return self.filter(operation_id=operation_id, lease_version=lease_version)

    def vacate(self) -> int:
        """Free these slots, moving each to a new lease version."""
        return self.update(
            operation=None,
            lease_expires_at=None,
            claimed_at=None,
            lease_version=F("lease_version") + 1,
        )


class Slot(models.Model):
    """One of `MAX_CONCURRENT_OPERATIONS` pre-created rows; an operation runs while holding one."""

    number = models.PositiveSmallIntegerField(primary_key=True)
    operation = models.OneToOneField(
        Operation, null=True, blank=True, on_delete=models.SET_NULL, related_name="slot"
    )
    lease_version = models.PositiveBigIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    objects = SlotQuerySet.as_manager()

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"slot {self.number}"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at < (now or timezone.now())

    def is_live(self, now: datetime | None = None) -> bool:
        """Held under a lease that has not run out."""
        return self.operation_id is not None and not self.is_expired(now)


class ClientTurn(models.Model):
    """When a client was last given a slot: the line serves the least recently served first."""

    client_key = models.CharField(max_length=128, primary_key=True)
    served_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.client_key} served at {self.served_at:%Y-%m-%d %H:%M:%S}"


class Counter(models.Model):
    """A lifetime counter, added to atomically by every process."""

    name = models.CharField(max_length=64, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"


class RefusalCount(models.Model):
    """Starts refused in one minute for one reason: the charts' refused series.

    Refusals leave no operation behind, so they are counted here, one row per
    minute and reason, added to atomically by every process.
    """

    minute = models.DateTimeField(help_text="The minute's start.")
    reason = models.CharField(max_length=32)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "reason"], name="refusal_count_minute_reason")
        ]

    def __str__(self) -> str:
        return f"{self.count} {self.reason} at {self.minute:%Y-%m-%d %H:%M}"


class WorkerHeartbeat(models.Model):
    """A worker process's last sign of life, for the health check."""

    worker_id = models.CharField(max_length=64, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    threads = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"worker {self.worker_id} on {self.hostname}"

    @classmethod
    def alive(cls, within: timedelta | None = None) -> models.QuerySet[WorkerHeartbeat]:
        """Workers seen within `within`, by default one slot lease (at least 15 s)."""
        return cls.objects.filter(last_seen_at__gte=timezone.now() - (within or liveness_window()))


def liveness_window() -> timedelta:
    """How recently a worker must have beaten to count as alive: one lease, at least 15 s."""
    return timedelta(seconds=max(LIVENESS_FLOOR_SECONDS, settings.COORDHUB.slot_lease_seconds))


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def usable(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiKey(models.Model):
    """A script's credential: only a SHA-256 digest of its high-entropy secret is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, help_text="What the key is for.")
    prefix = models.CharField(max_length=16, editable=False, help_text="Identifies the key.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
