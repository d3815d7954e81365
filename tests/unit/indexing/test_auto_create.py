"""Forbidding automatic index creation for the project's prefix, whatever else is allowed."""

from __future__ import annotations

from search.indices import auto_create_setting


def test_the_exclusion_goes_first_and_keeps_every_other_rule():
    assert auto_create_setting(None, "portal-packages*") == "-portal-packages*,+*"
    assert auto_create_setting("true", "portal-packages*") == "-portal-packages*,+*"
    assert auto_create_setting("false", "portal-packages*") == "false"
    assert (
        auto_create_setting("+logs-*,-tmp*", "portal-packages*")
        == "-portal-packages*,+logs-*,-tmp*"
    )
    once = auto_create_setting("true", "test-packages*")
    assert auto_create_setting(once, "test-packages*") == once
