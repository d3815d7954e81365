from django.apps import AppConfig


class SearchConfig(AppConfig):
    """The index schema, the query service, facets and the JSON API."""

    name = "search"
    verbose_name = "Search"
