"""Admin for search curation (promotions, synonyms) and search analytics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import F, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from portal.admin_input import SafeAutocompleteAdmin
from search import curation
from search.models import Promotion, QueryStat, SynonymSet


class CurationAdmin(SafeAutocompleteAdmin, admin.ModelAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        curation.reset()  # this process sees it at once; others within curation.TTL

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        curation.reset()

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        super().delete_queryset(request, queryset)
        curation.reset()


@admin.register(Promotion)
class PromotionAdmin(CurationAdmin):
    list_display = ["query", "position", "package", "label", "updated_at"]
    list_select_related = ["package"]
    search_fields = ["query", "package__name"]
    autocomplete_fields = ["package"]


@admin.register(SynonymSet)
class SynonymSetAdmin(CurationAdmin):
    list_display = ["terms", "enabled", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["terms"]


@admin.register(QueryStat)
class QueryStatAdmin(admin.ModelAdmin):
    list_display = ["day", "query", "searches", "zero_results"]
    list_filter = ["day"]
    search_fields = ["query"]
    date_hierarchy = "day"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list:
        report = path("report/", self.admin_site.admin_view(self.report_view), name="search_report")
        return [report, *super().get_urls()]

    def report_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            days = max(1, min(int(request.GET.get("days", 7)), 365))
        except ValueError:
            days = 7
        since = timezone.now().date() - timedelta(days=days - 1)
        recent = QueryStat.objects.filter(day__gte=since)
        grouped = recent.values("query").annotate(
            searches_total=Sum("searches"), zero_total=Sum("zero_results")
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Search analytics: last {days} days",
            "days": days,
            "top": grouped.order_by("-searches_total", "query")[:25],
            "zero": grouped.filter(zero_total__gt=0)
            .filter(zero_total=F("searches_total"))
            .order_by("-zero_total", "query")[:25],
            "volume": recent.values("day")
            .annotate(searches_total=Sum("searches"), zero_total=Sum("zero_results"))
            .order_by("day"),
        }
        return TemplateResponse(request, "admin/search/report.html", context)
