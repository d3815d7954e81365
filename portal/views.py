"""Visitor-facing pages: search (through the search service) and package detail (Postgres)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from portal.models import Package
from search import service


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def search_page(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    filters = {facet: request.GET.getlist(facet) for facet in service.FACETS}
    page = _int(request.GET.get("page"), 1)
    try:
        result = service.search(query, filters, page)
    except service.SearchUnavailable:
        return render(request, "portal/unavailable.html", {"query": query}, status=503)
    return render(request, "portal/search.html", {"result": result, "query": query})


def package_detail(request: HttpRequest, name: str) -> HttpResponse:
    package = get_object_or_404(Package.objects.select_related("section", "maintainer"), name=name)
    return render(request, "portal/package.html", {"package": package})
