"""What a catalog value must be for search to serve it: the rules editors' forms and the
importer share with the search side.

Search filters drop control and invisible formatting characters from what a visitor sends
(``search.params.clean_value`` calls :func:`visible`): a section, maintainer or tag value
that kept one (a zero-width space, a soft hyphen) was offered as a filter value that
always found nothing. The admin accepted them; it now refuses them, by the same rule.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError

TAG_SEPARATOR = "::"  # facet::value, in the index and in the importer's data


def invisible(ch: str) -> bool:
    """A control or invisible formatting character (Unicode category C)."""
    return unicodedata.category(ch)[0] == "C"


def visible(value: str) -> str:
    """``value`` without :func:`invisible` characters, its ends trimmed; inner spaces are
    kept, as the index keeps them."""
    return "".join(ch for ch in value if not invisible(ch)).strip()


def validate_filterable(value: str) -> None:
    """A value visitors can select as a filter: nothing :func:`visible` would drop."""
    if visible(value) != value:
        hidden = sorted({f"U+{ord(ch):04X}" for ch in value if invisible(ch)})
        what = f"invisible or control characters ({', '.join(hidden)})" if hidden else "spaces"
        raise ValidationError(
            f"Remove the {what} at the ends or inside: search filters drop them, so a "
            "filter on this value would never find anything.",
            code="invisible",
        )


def validate_tag_facet(value: str) -> None:
    """A debtags facet: filterable, without the ``::`` that separates it from its value."""
    validate_filterable(value)
    if TAG_SEPARATOR in value:
        raise ValidationError(
            f"A tag facet cannot contain “{TAG_SEPARATOR}”: it separates the facet from the "
            "value (enter “interface” as the facet and “x11” as the value).",
            code="separator",
        )
