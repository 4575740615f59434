from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting web infrastructure every app may use (the lowest layer: it imports no app)."""

    name = "core"
    verbose_name = "Platform core"

    def ready(self):
        from core import checks  # noqa: F401  (registers the system checks)
