"""Schemathesis against the app's own OpenAPI schema: generated requests (valid and not) never get a 5xx,
and documented responses match their schemas. Small example budget so CI stays within a couple of minutes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app, start_runtime
from tests.api.conftest import api_settings

KEY = "fuzz-admin-key-0123456789"
EXAMPLES = 25
# Operations listed from the schema at collection time (create_app builds nothing heavy).
OPERATIONS = [(path, method) for path, item in create_app(api_settings(Path("/nonexistent"))).openapi()["paths"].items()
              for method in item if method in {"get", "post", "put", "patch", "delete"}]


@pytest.fixture(scope="module")
def fuzz_schema(corpus_kb_template, tmp_path_factory):
    kb = tmp_path_factory.mktemp("fuzz") / "kb"
    shutil.copytree(corpus_kb_template, kb)
    app_settings = api_settings(kb, api_keys=KEY, rate_limit_per_min=0, max_upload_mb=1)
    app = create_app(app_settings)
    runtime = start_runtime(app_settings)
    app.state.runtime = runtime
    app.router.lifespan_context = _no_lifespan  # keep the one runtime across the test client's calls
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    runtime.close()


class _no_lifespan:
    def __init__(self, app) -> None:
        pass

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc) -> None:
        return None


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_no_server_errors_and_responses_match_the_schema(fuzz_schema, path, method):
    operation = fuzz_schema[path][method]

    # Valid requests and deliberately invalid ones (wrong types, missing fields, out-of-range values).
    cases = st.one_of(operation.as_strategy(), operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def check(case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {KEY}"})
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    check()

