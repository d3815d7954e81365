"""The benchmarks' own check that the services answer, against the real services.

``bench.relevance`` and ``bench.search`` stopped at once with "not answering: Elasticsearch
(ApiError 405 ...)" on Elasticsearch 9.5.4 as the services manager runs it (the
integration-test distribution), which answers ``GET /`` with 405: the check asked the node
for its banner, which no part of the portal uses.
"""

from __future__ import annotations

import pytest

from bench import common

pytestmark = pytest.mark.integration


def test_the_benchmarks_find_the_running_services_answering():
    checks = common.service_checks()
    assert set(checks) == {"PostgreSQL", "Elasticsearch", "Redis (coordination)", "Redis (cache)"}
    common.require_services(checks)  # raises SystemExit naming what does not answer
