from django.apps import AppConfig


class CoordhubConfig(AppConfig):
    name = "coordhub"

    def ready(self) -> None:
        from coordhub import checks  # noqa: F401  (registers the system checks)
