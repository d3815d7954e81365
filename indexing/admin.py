"""Admin pages for indexing: pending changes, and the search status page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from indexing.models import OutboxEntry
from indexing.status import collect


@admin.register(OutboxEntry)
class OutboxEntryAdmin(admin.ModelAdmin):
    """Read-only view of changes waiting to be indexed (deleting one would lose a change:
    nobody may, superusers included), and the search status page (for those who may view
    pending changes)."""

    list_display = ["object_id", "version", "created_at", "retry_after", "refusal"]
    list_filter = [("retry_after", admin.EmptyFieldListFilter)]  # set aside: not empty
    ordering = ["id"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list:
        status = path(
            "status/",
            self.admin_site.admin_view(self.status_view),
            name="indexing_search_status",
        )
        return [status, *super().get_urls()]

    def status_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        status = collect()
        for item in status.get("recent_errors", []):
            item["when"] = datetime.fromtimestamp(item["at"], UTC)
        rebuild = status.get("last_rebuild")
        if rebuild:
            rebuild["when"] = datetime.fromtimestamp(rebuild["finished_at"], UTC)
        context = {
            **self.admin_site.each_context(request),
            "title": "Search status",
            "status": status,
        }
        return TemplateResponse(request, "admin/indexing/search_status.html", context)
