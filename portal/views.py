"""Visitor-facing pages: search (through the search service) and package detail (Postgres).

Every URL is shareable: the query, filters, sort and page live in the query string. The page
works without JavaScript; ``static/portal/search.js`` makes it instant by fetching the results
region (``?partial=1``) and swapping it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db.models import Max, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from config.db_routers import read_from_replica
from config.http_cache import cacheable
from indexing import read_your_writes
from portal.models import Dependency, DependencyKind, Package, TagFacet
from search import service
from search.params import MAX_PAGE_SIZE, clean_value, whole_number


@dataclass
class Chip:
    facet_label: str
    label: str
    remove_url: str


@dataclass
class PageLink:
    number: int
    url: str
    current: bool


def _url(query: QueryDict, **changes: Any) -> str:
    q = query.copy()
    for name, value in changes.items():
        if value is None:
            q.pop(name, None)
        else:
            q.setlist(name, value if isinstance(value, list) else [str(value)])
    q.pop("partial", None)
    pairs = [(k, v) for k in q for v in q.getlist(k) if v != ""]
    return "?" + urlencode(pairs) if pairs else "?"


def _decorate(result: service.SearchResult, query: QueryDict) -> dict[str, Any]:
    """URLs for toggling facet values, removing chips and paging."""
    base = query.copy()
    base.pop("page", None)
    # The values as the search read them ("devel " is "devel"): compared with the raw ones,
    # a link meant to remove a filter sent in another form kept it.
    for name in result.params.filters:
        base.setlist(name, [v for v in dict.fromkeys(map(clean_value, base.getlist(name))) if v])
    for facet in result.facets:
        for value in facet.values:
            current = base.getlist(facet.name)
            toggled = (
                [v for v in current if v != value.value]
                if value.selected
                else [*current, value.value]
            )
            value.url = _url(base, **{facet.name: toggled or None})
    chips = []
    for chosen in result.selected:
        rest = [v for v in base.getlist(chosen.facet) if v != chosen.value]
        chips.append(
            Chip(chosen.facet_label, chosen.label, _url(base, **{chosen.facet: rest or None}))
        )
    page = result.params.page
    window = range(max(1, page - 3), min(result.pages, page + 3) + 1)
    return {
        "chips": chips,
        "clear_url": _url(QueryDict(mutable=True), q=result.params.q or None),
        "page_links": [
            PageLink(n, _url(base, page=n if n > 1 else None), n == page) for n in window
        ],
        "prev_url": _url(base, page=page - 1 if page > 2 else None) if page > 1 else None,
        "next_url": _url(base, page=page + 1) if page < result.pages else None,
        "first_url": _url(base) if window.start > 1 else None,
        "last_url": _url(base, page=result.pages) if window.stop <= result.pages else None,
        "suggestion_url": (
            _url(base, q=result.suggestion) if result.suggestion is not None else None
        ),
    }


def _with_page(query: QueryDict, page: int) -> QueryDict:
    changed = query.copy()
    if page > 1:
        changed["page"] = str(page)
    else:
        changed.pop("page", None)
    return changed


PAGE_SIZES = (20, 50, 100)  # offered on the page; the API takes any from 1 to 100


def _parse_paging_leniently(
    query: QueryDict, context: dict[str, Any]
) -> tuple[QueryDict, service.SearchParams]:
    """The search's parameters; a page deeper than the paging window shows the window's
    last page with a notice (the API answers 400 instead: it has cursors)."""
    try:
        return query, service.parse(query)
    except service.InvalidSearch as exc:
        if exc.param != "page":
            raise
        try:  # a page number, only too deep (not "abc", "0" or "²": those stay a 400)
            whole_number(query.get("page"), "page", 1, 1, 10**18)
        except service.InvalidSearch:
            raise exc from None
    # The page size was parsed before the page, so it is a valid one (or absent).
    page_size = whole_number(
        query.get("page_size"), "page_size", service.DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE
    )
    query = _with_page(query, -(-service.MAX_RESULT_WINDOW // page_size))  # may be partial
    context["paging_notice"] = (
        f"Only the first {service.MAX_RESULT_WINDOW:,} results can be paged through; this is "
        "the last page of those. Add words or filters to reach the others."
    )
    return query, service.parse(query)


@require_safe
@cacheable(service.validator, service.request_scope)
def search_page(request: HttpRequest) -> HttpResponse:
    read_your_writes.wait(request)  # an editor's own changes first
    query = request.GET
    partial = query.get("partial") == "1"
    template = "portal/_results.html" if partial else "portal/search.html"
    context: dict[str, Any] = {
        "query": query.get("q", "")[:400],
        "sort": query.get("sort", "relevance"),
        "sorts": service.SORTS,
        "page_sizes": PAGE_SIZES,
    }
    limited = service.over_rate_limit(request)
    if limited is not None:
        retry, context["notice"] = limited
        response = render(request, template, context, status=429)
        response["Retry-After"] = str(retry)
        return response
    try:
        query, parsed = _parse_paging_leniently(query, context)
        context["query"], context["sort"] = parsed.q, parsed.sort
        explain = query.get("explain") == "1" and request.user.is_staff
        result = service.search(parsed, explain=explain)
        if not result.hits and result.total and parsed.page > result.pages:
            # A page past the end (an old link, a hand-edited URL): the last page.
            query = _with_page(query, result.pages)
            parsed = service.parse(query)
            result = service.search(parsed, explain=explain)
            context["paging_notice"] = (
                f"There {'is' if result.pages == 1 else 'are'} only {result.pages} "
                f"page{'' if result.pages == 1 else 's'} of results; this is the last one."
            )
    except service.InvalidSearch as exc:
        context["notice"] = str(exc)
        return render(request, template, context, status=400)
    except service.SearchUnavailable:
        return render(request, "portal/unavailable.html", context, status=503)
    service.log_search(request, parsed, result.total)
    context["page_sizes"] = sorted({*PAGE_SIZES, parsed.page_size})  # a size from a link too
    context.update(result=result, **_decorate(result, query))
    if not result.total:
        context["popular"] = [
            (q, _url(QueryDict(mutable=True), q=q)) for q in service.popular_searches()
        ]
    return render(request, template, context)


@dataclass
class TagView:
    facet: str
    value: str
    label: str
    facet_label: str

    def __str__(self) -> str:
        return f"{self.facet}::{self.value}"


def _package_validator(request: HttpRequest, name: str) -> str | None:
    """A package page's ETag: its row version (every change of the row, its tags or its
    dependencies moves it on; reverse-dependency counts too, through the triggers), and the
    highest of the packages it lists (what it depends on, what depends on it): renaming one
    of those changes the page but not this row."""
    found = _named(name).values_list("id", "row_version").first()
    if found is None:
        return None
    pk, version = found
    listed = Package.objects.filter(
        Q(dependencies__target_id=pk)
        | Q(id__in=Dependency.objects.filter(package_id=pk).values("target_id"))
    ).aggregate(top=Max("row_version"))["top"]
    return f"package-{PACKAGE_PAGE_VERSION}-{version}-{listed or 0}"


PACKAGE_PAGE_VERSION = 1  # bump when the package page's template changes what it shows


def _named(name: str) -> Any:
    """The packages called ``name`` (none for a name PostgreSQL cannot take: a NUL in a
    query parameter is an error there, and /packages/%00/ was a 500)."""
    packages = Package.objects.filter(name=name)
    return packages.none() if "\x00" in name else packages


@require_safe
@cacheable(_package_validator)
def package_detail(request: HttpRequest, name: str) -> HttpResponse:
    package = _named(name).select_related("section", "maintainer").prefetch_related("tags").first()
    if package is None:
        if read_from_replica():
            raise Http404(name)  # the replica may lag: ReplicaReadsMiddleware asks the primary
        # A page of our own even with DEBUG on (make run), with a way forward.
        search_url = f"{reverse('portal:search')}?{urlencode({'q': name[:200]})}"
        context = {"name": name[:200], "search_url": search_url}
        return render(request, "404.html", context, status=404)
    deps = list(
        Dependency.objects.filter(package=package)
        .select_related("target")
        .order_by("kind", "target_name")
    )
    dependents = (
        Dependency.objects.filter(target=package, kind=DependencyKind.DEPENDS)
        .select_related("package")
        .order_by("package__name")
    )
    facet_labels = dict(TagFacet.objects.values_list("name", "label"))
    tags = [
        TagView(t.facet, t.value, t.label, facet_labels.get(t.facet, t.facet))
        for t in package.tags.all()
        if t.facet != "special"
    ]
    return render(
        request,
        "portal/package.html",
        {
            "package": package,
            "tags": tags,
            "source_name": package.source or package.name,
            "depends": [d for d in deps if d.kind == DependencyKind.DEPENDS],
            "recommends": [d for d in deps if d.kind == DependencyKind.RECOMMENDS],
            "dependents": dependents[:300],
            "dependents_total": package.reverse_dependency_count,
        },
    )


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 400 answer (``handler400``) to what Django refuses before any view: a form body
    over the upload limit (``DATA_UPLOAD_MAX_MEMORY_SIZE``), or too many parameters
    (``DATA_UPLOAD_MAX_NUMBER_FIELDS``). The API answers in its JSON shape; the page says
    which it was (it spoke of an oversized form for a GET with too many parameters), or
    what a ``BadRequest`` raised on purpose says (``portal.admin_input``)."""
    if isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
        reason = "too_many"
        message = (
            f"Too many parameters: a request may send at most "
            f"{settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,}."
        )
    elif isinstance(exception, RequestDataTooBig):
        reason = "too_large"
        limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
        message = f"The request is too large: a form may send at most {limit_mb} MB."
    elif isinstance(exception, BadRequest) and str(exception):  # refused, saying why
        reason, message = "refused", str(exception)
    else:
        reason, message = "unreadable", "The request could not be read."
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"message": message}}, status=400)
    return render(request, "400.html", {"reason": reason, "message": message}, status=400)
