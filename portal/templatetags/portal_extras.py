"""Template filters for the catalog pages."""

from django import template
from django.template.defaultfilters import filesizeformat

register = template.Library()


@register.filter
def filesizeformat_kb(value: int | None) -> str:
    """Format a size given in kilobytes (Debian's Installed-Size unit)."""
    if value is None:
        return ""
    return filesizeformat(int(value) * 1024)
