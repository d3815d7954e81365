from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The catalog: models, admin, import command and the visitor-facing pages."""

    name = "portal"
    verbose_name = "Catalog"
