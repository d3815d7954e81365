"""The Django admin for editors (first version; the catalog issue completes it)."""

from django.contrib import admin

from portal.models import Maintainer, Package, Section, Tag


@admin.register(Package)
class PackageAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "section", "priority", "maintainer"]
    list_select_related = ["section", "maintainer"]
    search_fields = ["name"]
    autocomplete_fields = ["section", "maintainer", "tags"]


@admin.register(Section)
class SectionAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Maintainer)
class MaintainerAdmin(admin.ModelAdmin):
    search_fields = ["name", "email"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["facet", "value"]
