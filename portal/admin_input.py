"""What the admin does with input it cannot use: one guard for every admin address, and
autocomplete widgets that do not look up a value that is no id.

* **NUL in an admin address**: the admin's GET parameters become database lookups and
  searches (list filters, the search box, autocompletes, an add form's initial values), and
  PostgreSQL's text cannot hold NUL. Three parameters had been guarded one by one; a review
  found five more that reached the database and were 500s. :class:`AdminNulGuard` refuses
  them all before any admin view, with a 400 that says so. Forms (POST) keep their fields'
  own validation, which says which field is wrong.
* **A value that is no id in an autocomplete field** (``/admin/portal/package/add/?section=abc``,
  or a form posted with ``package=abc``): Django's autocomplete widget rendered the selected
  value by looking it up as an id, which raised (a 500) instead of the form's "Select a
  valid choice". :class:`SafeAutocompleteAdmin` gives every autocomplete field widgets that
  leave such a value out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import BadRequest, ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

NUL = "\x00"


class AdminNulGuard:
    """Middleware: a 400 for an admin request whose address holds a NUL character."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefix: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.prefix is None:
            self.prefix = reverse("admin:index")
        if request.path.startswith(self.prefix) and NUL in _address_text(request):
            raise BadRequest(
                "This address holds a NUL character (%00), which nothing in the catalog can "
                "contain: remove it from the address."
            )
        return self.get_response(request)


def _address_text(request: HttpRequest) -> str:
    return request.path + "".join(k + "".join(vs) for k, vs in request.GET.lists())


def _ids_only(widget: Any, value: list[Any]) -> list[Any]:
    target = widget.field.target_field  # the related model's field the value must fit
    kept = []
    for item in value:
        try:
            target.to_python(item)
        except ValidationError:
            continue
        kept.append(item)
    return kept


class _SafeSelect(AutocompleteSelect):
    def optgroups(self, name: str, value: list[Any], attr: Any = None) -> Any:
        return super().optgroups(name, _ids_only(self, value), attr)


class _SafeSelectMultiple(AutocompleteSelectMultiple):
    def optgroups(self, name: str, value: list[Any], attr: Any = None) -> Any:
        return super().optgroups(name, _ids_only(self, value), attr)


class SafeAutocompleteAdmin(admin.options.BaseModelAdmin):
    """Autocomplete fields (``autocomplete_fields``) with widgets that leave out a selected
    value that is no id of the related model (a mixin for model admins and inlines)."""

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = _SafeSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = _SafeSelectMultiple(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)
