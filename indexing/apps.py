from django.apps import AppConfig


class IndexingConfig(AppConfig):
    """Change capture, the indexing tasks, and the reindex/search_status commands."""

    name = "indexing"
    verbose_name = "Indexing"

    def ready(self) -> None:
        from indexing import signals

        signals.connect()
