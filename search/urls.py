from django.urls import path, re_path

from search import api

app_name = "search"

urlpatterns = [
    path("search", api.search, name="search"),
    path("suggest", api.suggest, name="suggest"),
    path("facets/<str:facet>", api.facet_values, name="facet-values"),
    path("openapi.json", api.openapi_document, name="openapi"),
    path("docs", api.docs, name="docs"),
    re_path(r"^(?P<path>.*)$", api.not_found, name="not-found"),
]
