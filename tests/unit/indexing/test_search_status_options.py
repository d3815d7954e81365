"""search_status refuses options that would do nothing (before reaching any service)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command


@pytest.mark.parametrize("options", [["--full"], ["--sample", "50"], ["--sample", "50", "--json"]])
def test_verify_options_without_verify_are_an_error(options):
    with pytest.raises(CommandError, match="--verify"):
        call_command("search_status", *options)


def test_a_negative_sample_is_an_error():
    with pytest.raises(CommandError, match="--sample must be 0 or more"):
        call_command("search_status", "--verify", "--sample", "-1")
