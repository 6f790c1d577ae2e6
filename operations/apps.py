from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OperationsConfig(AppConfig):
    name = "operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from operations.kinds import simulated  # noqa: F401  (registers the shipped kind)
        from operations.tasks import run_operation

        # What `operations.enqueueing` enqueues: the engine hands slots over and enqueues
        # this task, whose body (`operations.execution`) hands slots over in turn.
        self.run_operation = run_operation

        post_migrate.connect(create_slots, sender=self)


def create_slots(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    """Pre-create the slot rows, so the admin shows them before the first start."""
    from django.conf import settings

    from operations.slots import ensure_slots

    ensure_slots(settings.COORDHUB.max_concurrent_operations)
