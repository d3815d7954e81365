"""The Django admin for editors.

Built to stay fast with the whole catalog: related objects are joined
(``list_select_related``), foreign keys and many-to-many fields use autocomplete widgets
(nothing renders a 20,000-option ``<select>``), the unfiltered change list uses PostgreSQL's
row estimate instead of a full-table ``COUNT(*)``, and name searches use a trigram index.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Page, Paginator
from django.db import connection, router
from django.db.models import Case, Count, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

import indexing
from indexing import read_your_writes
from portal.admin_input import SafeAutocompleteAdmin
from portal.models import Dependency, Maintainer, Package, Section, Tag
from portal.validators import TAG_SEPARATOR
from search import service as search
from search.facets import forget_vocabulary


def _when(iso: str) -> str:
    """An ISO timestamp as people read it: '2026-11-27 14:22:05 UTC'."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


class CatalogAdmin(SafeAutocompleteAdmin, admin.ModelAdmin):
    """An admin of what search shows: after a change made here (an add, a change, a
    delete, a bulk action on the list), the editor's own next search waits until it is
    searchable (``indexing.read_your_writes``)."""

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return self._remembering(super().changeform_view, request, *args, **kwargs)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return self._remembering(super().delete_view, request, *args, **kwargs)

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return self._remembering(super().changelist_view, request, *args, **kwargs)

    # The package field that protects this model's rows from deletion (a section or a
    # maintainer with packages cannot be deleted), or None.
    protecting_field: str | None = None

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # A tag of 8,335 packages listed 8,335 "Package-tag relationship" lines (554 KB, a
        # second to render); the counts by kind say how many, a few lines say what.
        if self.protecting_field and (protected := _protecting_packages(self, objs)):
            # Refused anyway: Django collected every related row first (the section libs:
            # 6,703 packages, 1.3 s) to say so.
            return [], {}, set(), protected
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return _a_few(deleted), counts, perms_needed, _a_few(protected)

    @staticmethod
    def _remembering(view: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        before = indexing.outbox_mark()
        response = view(request, *args, **kwargs)
        read_your_writes.remember(request, before)
        return response


DELETE_PAGE_ITEMS = 25  # rows a delete page lists of each kind; the rest are counted


def _protecting_packages(model_admin: CatalogAdmin, objs: Any) -> list[Any]:
    """The packages that keep ``objs`` from being deleted, as a delete page lists them (a
    few, and how many more)."""
    packages = Package.objects.filter(**{f"{model_admin.protecting_field}__in": objs})
    shown = list(packages.order_by("name").only("pk", "name")[:DELETE_PAGE_ITEMS])
    if not shown:
        return []
    lines = [
        format_html(
            'Package: <a href="{}">{}</a>',
            reverse("admin:portal_package_change", args=[p.pk]),
            p.name,
        )
        for p in shown
    ]
    if len(shown) == DELETE_PAGE_ITEMS:
        rest = packages.count() - DELETE_PAGE_ITEMS
        if rest:
            lines.append(f"… and {rest:,} more")
    return lines


def _a_few(items: list[Any]) -> list[Any]:
    """A delete page's nested list, each level cut to ``DELETE_PAGE_ITEMS`` rows and a
    line that counts the rest."""
    kept = [_a_few(item) if isinstance(item, list) else item for item in items]
    rows = [item for item in kept if not isinstance(item, list)]
    if len(rows) <= DELETE_PAGE_ITEMS:
        return kept
    shown, seen = [], 0
    for item in kept:  # a row's nested list follows it: kept with it
        if not isinstance(item, list):
            seen += 1
            if seen > DELETE_PAGE_ITEMS:
                continue
        elif seen > DELETE_PAGE_ITEMS:
            continue
        shown.append(item)
    return [*shown, f"… and {len(rows) - DELETE_PAGE_ITEMS:,} more"]


# The index lists the search pages that are not model lists (analytics, index state).
admin.site.index_template = "admin/portal_index.html"


class EstimatedCountPaginator(Paginator):
    """Uses the planner's row estimate for an unfiltered table instead of ``COUNT(*)``.

    The estimate lags behind what changed since the table was last analysed: too low, the
    last page was cut at the estimate and the last packages could not be reached; too high,
    the last pages were empty. The pages near the estimate's end (the last two, and any
    number past it, which gets the real last page) and a page that comes back short before
    it are worked out with the exact count instead: a ``COUNT(*)`` runs only for someone
    who pages to the end."""

    def estimate(self) -> int | None:
        """The planner's row count of an unfiltered table of more than 10,000 rows."""
        query = getattr(self.object_list, "query", None)
        if query is not None and not query.where and not query.distinct:
            table = self.object_list.model._meta.db_table
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
                row = cursor.fetchone()
            if row and row[0] and row[0] > 10_000:
                return int(row[0])
        return None

    @cached_property
    def count(self) -> int:
        estimate = self.estimate()
        self.estimated = estimate is not None
        return super().count if estimate is None else estimate

    def page(self, number: Any) -> Page:
        if not (self.count and self.estimated):
            return super().page(number)
        try:
            wanted = int(number)
        except (TypeError, ValueError):
            return super().page(number)  # validate_number() says what is wrong with it
        if wanted >= self.num_pages - 1:
            return self._exact_page(wanted)
        page = super().page(wanted)
        if len(page.object_list) < self.per_page:  # short before the end: estimated too high
            return self._exact_page(wanted)
        return page

    def _exact_page(self, number: int) -> Page:
        self.__dict__["count"] = self.object_list.count()
        self.__dict__.pop("num_pages", None)
        self.estimated = False
        # A link the estimate drew past the real end gets the real last page.
        return super().page(min(number, self.num_pages))


class EstimatedCountChangeList(ChangeList):
    """The change list of an :class:`EstimatedCountPaginator`: when the page asked for was
    past the real end (an estimate too high drew links there), the paginator serves the real
    last page, and the list must number its links and count its rows from that page, or its
    page links raised ``EmptyPage`` (a 500)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        if not getattr(self.paginator, "estimated", True):  # the exact count was needed
            self.result_count = self.paginator.count
            self.page_num = min(self.page_num, max(1, self.paginator.num_pages))
            self.multi_page = self.result_count > self.list_per_page


class EstimatedCountAdmin(admin.ModelAdmin):
    """A change list counted by :class:`EstimatedCountPaginator`."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False  # a full COUNT(*) on every page: what the estimate saves

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return EstimatedCountChangeList


def typed_search(request: HttpRequest) -> str:
    """What the editor searched for: the change list's ``q``, or what the autocomplete of a
    package field (promotions, dependencies) sends as ``term`` (a NUL in either is refused
    before any admin view: ``portal.admin_input``)."""
    return request.GET.get("q", request.GET.get("term", "")).strip()[:200]


class InputFilter(admin.SimpleListFilter):
    """A list filter with a text box instead of one link per value."""

    template = "admin/portal/input_filter.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # One dummy choice so the filter is rendered; the template shows an input instead.
        return [("", "")]

    def choices(self, changelist: Any) -> Any:
        # Everything the list shows by (other filters, the search words, the sort), but
        # not this filter's old value, nor the page: a new filter starts at its first page.
        query = dict(changelist.filter_params)  # without the page and the error flag
        query.pop(self.parameter_name, None)
        yield {
            "value": self.value() or "",
            "parameter_name": self.parameter_name,
            "hidden": [(k, v) for k, values in query.items() for v in values],
        }


class MaintainerFilter(InputFilter):
    title = "maintainer"
    parameter_name = "maintainer_name"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = (self.value() or "").strip()
        if value:
            return queryset.filter(maintainer__name__icontains=value)
        return queryset


class TagFacetFilter(admin.SimpleListFilter):
    title = "tag facet"
    parameter_name = "tag_facet"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        facets = Tag.objects.order_by("facet").values_list("facet", flat=True).distinct()
        return [(f, f) for f in facets]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            # A semi-join: no DISTINCT over whole rows (descriptions are long).
            tagged = Package.tags.through.objects.filter(tag__facet=self.value())
            return queryset.filter(pk__in=tagged.values("package_id"))
        return queryset


class TagValueFilter(admin.SimpleListFilter):
    """Values of the tag facet chosen in :class:`TagFacetFilter`."""

    title = "tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        facet = request.GET.get(TagFacetFilter.parameter_name)
        if not facet:
            return []
        return [(str(t.pk), t.value) for t in Tag.objects.filter(facet=facet)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        # Only a value of the facet chosen now: the facet filter's links keep this one, and
        # a tag of another facet (or of none) narrowed the list while this filter, listing
        # the chosen facet's values, showed "All".
        facet = request.GET.get(TagFacetFilter.parameter_name)
        value = self.value()
        if (
            facet
            and value
            and value.isdigit()
            and len(value) < 19
            and Tag.objects.filter(pk=int(value), facet=facet).exists()
        ):
            tagged = Package.tags.through.objects.filter(tag_id=int(value))
            return queryset.filter(pk__in=tagged.values("package_id"))
        return queryset


class DependencyInline(SafeAutocompleteAdmin, admin.TabularInline):
    model = Dependency
    fk_name = "package"
    fields = ["kind", "target_name", "target"]
    readonly_fields = ["target"]
    extra = 1
    verbose_name = "dependency"
    verbose_name_plural = "dependencies (depends / recommends)"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("target")


class PackageForm(forms.ModelForm):
    """The package form, refusing a save over a newer one.

    Two editors who opened the same package both saved, and the second save overwrote the
    first one's change without a word. The form carries the row version it was opened at
    (``row_version``: every write moves it on, by a database trigger); a save finds the row
    locked for the rest of the admin's transaction and refuses it when the version moved on
    since. A change the database made itself (a reverse-dependency count another package's
    edit moved) counts as a change too: the editor opens the package again and saves."""

    seen_version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    # Shown (as a checkbox) only once a rename would unlink packages that depend on this one.
    confirm_rename = forms.BooleanField(
        required=False,
        widget=forms.HiddenInput,
        label="Rename anyway",
        help_text="The packages listed under the name keep depending on the old name.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["seen_version"].initial = self.instance.row_version

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        seen = cleaned.get("seen_version")
        if self.instance.pk is not None and seen is not None:
            current = (
                Package.objects.using(router.db_for_write(Package))
                .select_for_update()
                .filter(pk=self.instance.pk)
                .values_list("row_version", flat=True)
                .first()
            )
            if current is not None and current != seen:
                raise forms.ValidationError(
                    "Someone saved this package after you opened it, so your changes were "
                    "not saved (they would have undone theirs). Open the package again to "
                    "see what changed, and make your changes there.",
                    code="stale",
                )
        self._ask_before_unlinking(cleaned)
        return cleaned

    def _ask_before_unlinking(self, cleaned: dict[str, Any]) -> None:
        """Dependencies are by name (Debian's): a renamed package no longer satisfies the
        packages that depend on it by its old name. They are unlinked (the database's
        triggers), and its popularity, which ranks search results, drops. Renaming used to
        do that without a word; now the editor sees who would be unlinked and confirms."""
        if self.instance.pk is None or "name" not in self.changed_data:
            return
        if cleaned.get("confirm_rename"):
            return
        dependents = (
            Package.objects.filter(dependencies__target_id=self.instance.pk)
            .order_by("name")
            .values_list("name", flat=True)
            .distinct()
        )
        count = dependents.count()
        if not count:
            return
        shown = list(dependents[:10])
        listed = ", ".join(shown) + (
            f" and {count - len(shown)} more" if count > len(shown) else ""
        )
        verb = "depends on or recommends" if count == 1 else "depend on or recommend"
        self.fields["confirm_rename"].widget = forms.CheckboxInput()
        self.add_error(
            "name",
            forms.ValidationError(
                f"{count} package{'' if count == 1 else 's'} {verb} {self.instance.name} by "
                f"name ({listed}). Renamed, this package no longer satisfies them: they keep "
                "the old name, and its popularity in search drops. Tick “Rename anyway” "
                "below to rename it.",
                code="unlinks_dependents",
            ),
        )


@admin.register(Package)
class PackageAdmin(EstimatedCountAdmin, CatalogAdmin):
    form = PackageForm
    list_display = [
        "name",
        "version",
        "section",
        "priority",
        "architecture",
        "maintainer",
        "reverse_dependency_count",
        "updated_at",
    ]
    list_select_related = ["section", "maintainer"]
    list_filter = [
        "section",
        "priority",
        "architecture",
        TagFacetFilter,
        TagValueFilter,
        MaintainerFilter,
    ]
    search_fields = ["name", "summary"]
    search_help_text = "Search by name or summary (case-insensitive, substring)."
    autocomplete_fields = ["section", "maintainer", "tags"]
    readonly_fields = [
        "search_index_state",
        "reverse_dependency_count",
        "row_version",
        "created_at",
        "updated_at",
    ]
    actions = ["reindex_selected"]
    fieldsets = [
        ("Search index", {"fields": ["search_index_state"]}),
        (
            None,
            {
                "fields": [
                    "name",
                    "confirm_rename",
                    "version",
                    "source",
                    "summary",
                    "description",
                    "seen_version",
                ]
            },
        ),
        (
            "Classification",
            {"fields": ["section", "priority", "architecture", "maintainer", "tags"]},
        ),
        ("Links and sizes", {"fields": ["homepage", "installed_size_kb", "download_size_bytes"]}),
        (
            "Bookkeeping",
            {
                "fields": ["reverse_dependency_count", "row_version", "created_at", "updated_at"],
                "classes": ["collapse"],
            },
        ),
    ]
    inlines = [DependencyInline]
    list_per_page = 50
    ordering = ["name"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        return super().get_search_results(request, queryset, search_term.strip()[:200])

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # ModelAdmin.get_queryset, with the annotation its ordering needs made first.
        queryset = self.model._default_manager.get_queryset()
        term = typed_search(request)
        if term:
            # For get_ordering: the package named so first, then names starting so.
            queryset = queryset.annotate(
                _match=Case(
                    When(name__iexact=term, then=Value(0)),
                    When(name__istartswith=term, then=Value(1)),
                    default=Value(2),
                )
            )
        return queryset.order_by(*self.get_ordering(request))

    def get_ordering(self, request: HttpRequest) -> list[str]:
        if typed_search(request):
            return ["_match", "name"]
        return list(self.ordering)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> Any:
        changelist = super().get_changelist(request, **kwargs)

        class LeanChangeList(changelist):  # type: ignore[misc, valid-type]
            """The list never shows descriptions (up to 81 KB each): don't fetch them."""

            def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> Any:
                return super().get_queryset(request, exclude_parameters).defer("description")

        return LeanChangeList

    @admin.display(description="state")
    def search_index_state(self, obj: Package) -> str:
        """In sync or pending, the document's version against the row's, last indexed."""
        if not obj.pk:
            return "-"
        state = search.document_state(obj.pk)
        pending = indexing.pending(obj.pk)
        if state.error:
            verdict, colour = f"index unreachable ({state.error})", "#b45309"
        elif state.exists and state.version == obj.row_version:
            # The document already has this version: a queued entry left for it is a no-op.
            verdict, colour = "in sync", "#15803d"
        elif pending:
            verdict, colour = "pending: a change is waiting to be indexed", "#b45309"
        elif not state.exists:
            verdict, colour = "missing from the index", "#b91c1c"
        else:
            verdict, colour = "out of date (document differs from the row)", "#b91c1c"
        return format_html(
            '<strong style="color:{}">{}</strong><br>document version {} · row version {} · '
            "last indexed {}",
            colour,
            verdict,
            state.version if state.version is not None else "-",
            obj.row_version,
            _when(state.indexed_at)
            if state.indexed_at
            else "unknown"
            if state.error or not state.exists
            else "by the last full rebuild",
        )

    # Queuing (with "select all", the whole catalog) is a change: view-only staff may not.
    @admin.action(description="Reindex selected packages", permissions=["change"])
    def reindex_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = indexing.enqueue(queryset)
        self.message_user(request, f"{count} package(s) queued for reindexing.", messages.SUCCESS)


@admin.register(Section)
class SectionAdmin(CatalogAdmin):
    protecting_field = "section"
    list_display = ["name", "package_count", "updated_at"]
    search_fields = ["name"]
    ordering = ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_packages=Count("packages"))

    @admin.display(description="packages", ordering="_packages")
    def package_count(self, obj: Section) -> int:
        return obj._packages


@admin.register(Maintainer)
class MaintainerAdmin(EstimatedCountAdmin, CatalogAdmin):
    protecting_field = "maintainer"
    list_display = ["name", "email", "package_count", "updated_at"]
    search_fields = ["name", "email"]
    ordering = ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        per_maintainer = (
            Package.objects.filter(maintainer=OuterRef("pk"))
            .order_by()
            .values("maintainer")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super().get_queryset(request).annotate(_packages=Coalesce(Subquery(per_maintainer), 0))
        )

    @admin.display(description="packages", ordering="_packages")
    def package_count(self, obj: Maintainer) -> int:
        return obj._packages


@admin.register(Tag)
class TagAdmin(CatalogAdmin):
    list_display = ["__str__", "facet", "value", "updated_at"]
    list_filter = ["facet"]
    search_fields = ["facet", "value"]
    ordering = ["facet", "value"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        forget_vocabulary()  # its label shows at once here, elsewhere within 5 minutes

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        # Accept the full form too: "interface::x11".
        facet, sep, value = search_term.strip().partition(TAG_SEPARATOR)
        if sep:
            return queryset.filter(facet__iexact=facet, value__istartswith=value), False
        return super().get_search_results(request, queryset, search_term)
