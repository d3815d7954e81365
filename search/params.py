"""Search parameters: parsing and validation of what visitors and API clients send.

Everything a request can carry is checked here, before any query is built: query length,
page and page size, sort, facet names and values, the deep-paging cursor. Bad input raises
:class:`InvalidSearch` with a message fit to show the user (the API answers 400 with it, the
page shows it as a notice).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portal.validators import invisible, visible
from search.facets import FacetRegistry

MAX_QUERY_LENGTH = 200
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_RESULT_WINDOW = 1000  # a page may not start past this; the API has cursors
MAX_VALUES_PER_FACET = 20
MAX_CONTAINS_LENGTH = 50  # /api/facets/<name>?contains=
MAX_VALUE_LENGTH = 200
SORTS = {
    "relevance": "Relevance",
    "name": "Name (A–Z)",
    "popularity": "Most depended on",
    "size": "Installed size (smallest first)",
}
RESERVED = {"q", "page", "page_size", "sort", "cursor", "partial", "format", "explain"}
# Parameters that take one value: given twice, the last one silently won.
SINGLE_VALUED = ("q", "sort", "page", "page_size", "cursor")
# What Django decodes bytes that are not UTF-8 to: "q=caf%e9" (Latin-1) read as "caf\ufffd".
NOT_UTF8 = "\ufffd"
_DIGITS = re.compile(r"[0-9]{1,18}")
# What links shared on the web pick up on the way (campaign and click identifiers): ignored,
# not refused as unknown filters ("/?q=vim&utm_source=x" was a 400).
TRACKING = re.compile(r"^(utm_[a-z_]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid)$")
# What a cursor of each sort holds: one value per clause of ``search.query.SORT_CLAUSES``
# (a test keeps the two in step). A cursor of another shape never reaches Elasticsearch: it
# answered a 400 that blamed the search words, or the client failed to encode a number
# past 64 bits and the search was "unavailable" (503).
CURSOR_KINDS: dict[str, tuple[str, ...]] = {
    "relevance": ("number", "number", "text"),  # score, popularity, name
    "name": ("text",),
    "popularity": ("number", "text"),
    "size": ("number", "text"),  # installed size (missing: the largest long), name
}
_LONG = 2**63


class InvalidSearch(ValueError):
    """A parameter is not acceptable; ``str(exc)`` is a message for the user."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class SearchParams:
    q: str = ""
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sort: str = "relevance"
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: tuple[Any, ...] | None = None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    @property
    def page_hits(self) -> int:
        """How many hits this page shows at most: the window's last page may be partial
        (30 a page: page 34 holds results 991-1,000)."""
        if self.cursor is not None:
            return self.page_size
        return max(0, min(self.page_size, MAX_RESULT_WINDOW - self.offset))

    def cache_key_parts(self) -> dict[str, Any]:
        """What determines the facet counts (not paging or sort), normalised."""
        return {
            "q": " ".join(self.q.lower().split()),
            "filters": {k: sorted(v) for k, v in sorted(self.filters.items()) if v},
        }


def clean_text(value: str) -> str:
    """Drop control and invisible formatting characters; collapse whitespace."""
    kept = "".join(" " if ch.isspace() else ch for ch in value if ch.isspace() or not invisible(ch))
    return " ".join(kept.split())


def clean_value(value: str) -> str:
    """A filter value: control and invisible formatting characters dropped, the ends trimmed;
    inner spaces are kept, as the index keeps them ("Debian  Python Team"). The catalog's
    forms refuse values this would change (``portal.validators``: one rule)."""
    return visible(value)


def whole_number(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    """``raw`` as a whole number from ``low`` to ``high`` (``default`` when absent); raises
    :class:`InvalidSearch` naming the parameter."""
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str) or not _DIGITS.fullmatch(raw):
        # int() also reads a fullwidth 1, "1_0" and " 2 "; and digits past 18 are no page.
        raise InvalidSearch(f"'{name}' must be a whole number, not {str(raw)[:20]!r}.", name)
    value = int(raw)
    if not low <= value <= high:
        raise InvalidSearch(f"'{name}' must be between {low} and {high}.", name)
    return value


def encode_cursor(sort_values: Sequence[Any]) -> str:
    raw = json.dumps(list(sort_values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[Any, ...]:
    try:
        padded = token + "=" * (-len(token) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidSearch("'cursor' is not a cursor this API returned.", "cursor") from None
    if (
        not isinstance(values, list)
        or not 1 <= len(values) <= 4
        or not all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in values)
    ):
        raise InvalidSearch("'cursor' is not a cursor this API returned.", "cursor")
    return tuple(values)


def _fits(value: Any, kind: str) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return -_LONG <= value < _LONG and math.isfinite(value)


def _check_cursor(cursor: tuple[Any, ...], sort: str) -> None:
    """Refuse a cursor that is not one of ``sort``'s (another sort's, or made by hand)."""
    kinds = CURSOR_KINDS[sort]
    if len(cursor) != len(kinds) or not all(map(_fits, cursor, kinds)):
        raise InvalidSearch(
            f"'cursor' does not belong to a search sorted by {sort}; "
            "start again from the first page.",
            "cursor",
        )


def _check_encoding_and_repeats(params: Any) -> None:
    """Refuse a value that was not UTF-8 (searched as U+FFFD, it found the wrong thing or
    nothing), and a one-value parameter given more than once (the last one won)."""
    for name in params:
        _check_values(name, params.getlist(name), single=name in SINGLE_VALUED)


def _check_values(name: str, values: list[str], *, single: bool) -> None:
    """One parameter's values: UTF-8, and given once if ``single``."""
    if NOT_UTF8 in name or any(NOT_UTF8 in value for value in values):
        raise _not_utf8(name)
    if single and len(values) > 1:
        raise _repeated(name, len(values))


def _not_utf8(name: str) -> InvalidSearch:
    message = f"'{name[:40]}' is not valid UTF-8 text; percent-encode it as UTF-8."
    return InvalidSearch(message, name)


def _repeated(name: str, times: int) -> InvalidSearch:
    return InvalidSearch(f"'{name}' was given {times} times; give it once.", name)


def facet_value_options(params: Any, max_limit: int) -> tuple[str, int]:
    """The ``contains`` text and ``limit`` of a facet's values (``/api/facets/<name>``),
    checked like the rest: each given once, in UTF-8; ``contains`` at most
    ``MAX_CONTAINS_LENGTH`` characters (longer input was cut and searched, silently),
    ``limit`` a whole number from 1 to ``max_limit`` (given twice, the first one won)."""
    for name in ("contains", "limit"):
        _check_values(name, params.getlist(name), single=True)
    contains = clean_text(params.get("contains") or "")
    if len(contains) > MAX_CONTAINS_LENGTH:
        raise InvalidSearch(
            f"'contains' is too long ({len(contains)} characters; at most {MAX_CONTAINS_LENGTH}).",
            "contains",
        )
    return contains, whole_number(params.get("limit"), "limit", 20, 1, max_limit)


def _query_text(params: Any) -> str:
    raw_q = params.get("q") or ""
    if len(raw_q) > MAX_QUERY_LENGTH * 4:
        raise InvalidSearch(f"The search text is too long (at most {MAX_QUERY_LENGTH}).", "q")
    q = clean_text(raw_q)
    if len(q) > MAX_QUERY_LENGTH:
        raise InvalidSearch(
            f"The search text is too long ({len(q)} characters; at most {MAX_QUERY_LENGTH}).",
            "q",
        )
    return q


def _sort(params: Any) -> str:
    sort = params.get("sort") or "relevance"
    if sort not in SORTS:
        raise InvalidSearch(f"Unknown sort {sort[:40]!r}; use one of: {', '.join(SORTS)}.", "sort")
    return sort


def _paging(
    params: Any, sort: str, *, allow_cursor: bool
) -> tuple[int, int, tuple[Any, ...] | None]:
    """(page, page size, cursor)."""
    page_size = whole_number(
        params.get("page_size"), "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE
    )
    page = whole_number(params.get("page"), "page", 1, 1, MAX_RESULT_WINDOW)
    if (page - 1) * page_size >= MAX_RESULT_WINDOW:
        raise InvalidSearch(
            f"That page is too deep: at most the first {MAX_RESULT_WINDOW} results can be "
            "paged through; narrow the search"
            + (" or use 'cursor' paging." if allow_cursor else "."),
            "page",
        )
    cursor = None
    if params.get("cursor"):
        if not allow_cursor:
            raise InvalidSearch("'cursor' is only available in the JSON API.", "cursor")
        cursor = decode_cursor(params.get("cursor"))
        _check_cursor(cursor, sort)
    return page, page_size, cursor


def _facet_values(params: Any, name: str, choices: tuple[str, ...] | None) -> tuple[str, ...]:
    values = list(dict.fromkeys(v for v in (clean_value(v) for v in params.getlist(name)) if v))
    if len(values) > MAX_VALUES_PER_FACET:
        raise InvalidSearch(f"Too many values for {name!r} (at most {MAX_VALUES_PER_FACET}).", name)
    for value in values:
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidSearch(f"A value of {name!r} is too long.", name)
        if choices is not None and value not in choices:
            raise InvalidSearch(
                f"Unknown value {value[:40]!r} for {name!r}; use one of: {', '.join(choices)}.",
                name,
            )
    return tuple(values)


def _filters(params: Any, facets: FacetRegistry) -> dict[str, tuple[str, ...]]:
    filters: dict[str, tuple[str, ...]] = {}
    for name in params:
        if name in RESERVED or TRACKING.match(name):
            continue
        facet = facets.get(name)
        if facet is None:
            raise InvalidSearch(
                f"Unknown filter {name[:40]!r}. Filters are: {facets.describe()}.", name
            )
        values = _facet_values(params, name, facet.choices)
        if values:
            filters[name] = values
    return filters


def parse(params: Any, facets: FacetRegistry, *, allow_cursor: bool = False) -> SearchParams:
    """Build SearchParams from a QueryDict-like object (``getlist``/``get``/``keys``);
    ``facets`` says which filters exist."""
    _check_encoding_and_repeats(params)
    q = _query_text(params)
    sort = _sort(params)
    page, page_size, cursor = _paging(params, sort, allow_cursor=allow_cursor)
    return SearchParams(
        q=q,
        filters=_filters(params, facets),
        sort=sort,
        page=page,
        page_size=page_size,
        cursor=cursor,
    )
