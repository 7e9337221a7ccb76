"""schemathesis against the published OpenAPI of `govern serve`: whatever it sends, valid or
not, as an owner, a requester or nobody, the server never answers 500, and its answers
conform to the schema it publishes (status codes and bodies)."""

from __future__ import annotations

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (response_schema_conformance,
                                               status_code_conformance)

from govern.service.app import create_app

from .test_requests_store import copy_mesh

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    root = copy_mesh(tmp_path_factory.mktemp("schemathesis"))
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(root, dev=True))


def auth(user: str | None) -> dict[str, str]:
    if user is None:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:x".encode()).decode()}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
@pytest.mark.parametrize("user", ["dave", "bob", None], ids=["owner", "requester", "nobody"])
def test_no_server_errors(api_schema, mode, user):
    seen: set[int] = set()

    @given(case=api_schema.as_strategy(mode))
    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        seen.add(case.call_and_validate(headers=auth(user), checks=CHECKS).status_code)

    run()
    assert 503 not in seen, "the app was not started (its lifespan did not run)"
    if user is None:  # nothing but "sign in" (or, for malformed input, "invalid"; or, once
        # the credentials it makes up have failed often enough, "too many failed sign-ins")
        assert 401 in seen and seen <= {400, 401, 429}, seen
    elif mode is GenerationMode.POSITIVE:  # the server was really exercised
        assert any(200 <= code < 300 for code in seen) and 400 in seen, seen
