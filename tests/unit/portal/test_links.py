"""A package page's address built without the resolver is exactly reverse()'s."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.urls import clear_script_prefix, reverse, set_script_prefix
from hypothesis import given
from hypothesis import strategies as st

from portal.links import package_url

NAMES = [
    "vim",
    "g++",
    "libstdc++6",
    "python3.11",
    "0ad-data",
    "a b",  # quoted, as reverse() quotes it
    "ünïcode",
    "50%",
    "x/y",
    "name-placeholder",
    "semi;colon:at@",
]


def reversed_url(name: str) -> str:
    return reverse("portal:package", args=[name])


@pytest.mark.parametrize("name", NAMES)
def test_the_same_address_as_reverse(name):
    assert package_url(name) == reversed_url(name)


@given(st.text(st.characters(exclude_characters="\n", exclude_categories=["Cs"]), min_size=1))
def test_the_same_address_as_reverse_for_any_name(name):
    assert package_url(name) == reversed_url(name)


@pytest.mark.parametrize("prefix", ["/portal/", "/a b/", "/"])
def test_under_a_script_prefix(prefix):
    set_script_prefix(prefix)
    try:
        assert package_url("g++") == reversed_url("g++")
        assert package_url("g++").startswith(reverse("portal:search"))
    finally:
        clear_script_prefix()


def test_the_template_filter_gives_the_same_address():
    rendered = Template("{{ name|package_url }}").render(Context({"name": "libstdc++6"}))
    assert rendered == reversed_url("libstdc++6")
