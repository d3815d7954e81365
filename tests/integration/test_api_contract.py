"""The JSON API against its OpenAPI 3.1 description (issue #14).

The document at /api/openapi.json is a valid OpenAPI 3.1 document (openapi-spec-validator),
and Schemathesis, generating requests from it, finds no 5xx and no answer that breaks the
schema (status code, content type, body, headers) on the real API with a real index. CI runs
Hypothesis with fixed examples (HYPOTHESIS_PROFILE=ci, tests/conftest.py)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis import checks

from search import openapi
from tests.helpers import make_package

pytestmark = [pytest.mark.integration]

# The document as the code builds it; the first test checks the served one is the same.
schema = schemathesis.openapi.from_dict(openapi.schema())

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.mark.django_db
def test_the_document_is_valid_openapi_3_1(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    document = response.json()
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document == openapi.schema()
    assert set(document["paths"]) == {"/api/search", "/api/suggest", "/api/facets/{facet}"}


def test_the_document_describes_tag_filters():
    """Tag facets (`tag.interface=x11`) were only mentioned in a description: a client
    generated from the document could not send one, and Schemathesis never tried one."""
    import re

    for path in ("/api/search", "/api/facets/{facet}"):
        parameters = openapi.schema()["paths"][path]["get"]["parameters"]
        free_form = [p for p in parameters if p["schema"].get("type") == "object"]
        assert len(free_form) == 1, path
        tags = free_form[0]
        assert tags["style"] == "form" and tags["explode"] is True
        pattern = tags["schema"]["propertyNames"]["pattern"]
        assert re.search(pattern, "tag.interface") and re.search(pattern, "tag.use")
        assert not re.search(pattern, "section") and not re.search(pattern, "tag.")


@pytest.mark.django_db
def test_the_docs_page_lists_every_endpoint(client):
    html = client.get("/api/docs").content.decode()
    for path in ("/api/search", "/api/suggest", "/api/facets/{facet}"):
        assert f"GET {path}" in html
    assert 'href="/api/openapi.json"' in html


@pytest.fixture
def contract_catalog(transactional_db, search_index, settings_override):
    from indexing import writer

    for i, section in enumerate(["editors", "graphics", "net", "utils"]):
        make_package(
            f"contract-{section}", section=section, summary=f"tool number {i} for {section}"
        )
    writer.process_outbox()


@pytest.fixture
def settings_override(settings):
    settings.SEARCH_API_RATE_LIMIT = "0"  # thousands of generated requests


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_keeps_its_contract(case, contract_catalog, live_server):
    # Through a real server: its requests run in their own threads and connections, as
    # in production (calling the WSGI app in the test's thread would close the test's
    # database connection at the end of every request).
    case.call_and_validate(base_url=live_server.url, checks=CHECKS)
