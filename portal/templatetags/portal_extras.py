"""Template filters for the catalog pages."""

from django import template
from django.template.defaultfilters import filesizeformat

from portal.links import package_url

register = template.Library()


@register.filter
def filesizeformat_kb(value: int | None) -> str:
    """Format a size given in kilobytes (Debian's Installed-Size unit)."""
    if value is None:
        return ""
    return filesizeformat(int(value) * 1024)


@register.filter(name="package_url")
def package_url_filter(name: str) -> str:
    """``{{ name|package_url }}``: the package page's path, as ``{% url 'portal:package' name %}``
    gives it, without the URL resolver (``portal.links``: a search page has 20 of them, a
    library's page 300 more)."""
    return package_url(name)
