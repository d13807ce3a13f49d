"""Property-based fuzz of the running API from its own OpenAPI schema (schemathesis).

The API runs as its own process (``python -m workers.api``, as supervisord runs it) over the
session's real PostgreSQL, S3 and Kafka, with a few stored pages and a batch. For every
operation of the schema it serves at ``/openapi.json``, schemathesis generates valid and
invalid requests and checks each response: no 5xx; status codes, content types, headers and
bodies as the schema says; invalid input rejected with a 4xx; auth not ignored.

One allowance: schema-valid input may still be a 422 when it fails a check no JSON Schema can
state (a URL that does not canonicalise, an invalid regular expression, a cursor this API
did not issue, since >= until); those answers are still checked for shape and status.

(Each operation runs as its own Hypothesis test, built from the live schema inside the
test: schemathesis' pytest plugin for fixture-loaded schemas does not run on pytest 9.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config._auth import OpenAPIAuthConfig

from tests.helpers.api import ApiProcess, fresh_database, make_key, store_pages
from tests.helpers.services import run_coro
from tests.integration.test_api import PAGES, _batch
from workers.api import create_app
from workers.settings import Settings
from workers.storage import PageStore

pytestmark = pytest.mark.integration

_PATHS = create_app(Settings()).openapi()["paths"]
OPERATIONS = [(method.upper(), path) for path, item in _PATHS.items() for method in item]
EXAMPLES = 30


@pytest.fixture(scope="module")
async def fuzz_settings(settings: Settings) -> AsyncIterator[Settings]:
    async with fresh_database(settings.postgres, prefix="fuzz") as pg:
        local = settings.model_copy(update={"postgres": pg})
        async with PageStore(pg, settings.s3, settings.storage) as store:
            await store_pages(store, PAGES[:8])
        conn = await asyncpg.connect(pg.dsn())
        try:
            await _batch(conn, "fuzz-batch", PAGES[:8])
        finally:
            await conn.close()
        yield local


@pytest.fixture(scope="module")
def api_server(fuzz_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    server = ApiProcess(fuzz_settings, log_path=Path(tmp_path_factory.mktemp("api-fuzz")) / "api.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def write_key(fuzz_settings: Settings) -> str:
    return run_coro(make_key(fuzz_settings.postgres, "write", rate_per_s=100_000))


@pytest.fixture(scope="module")
def api_schema(api_server: ApiProcess, write_key: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")
    # The key goes in through the schema's own security scheme, so that generated requests
    # that drop or spoil it are checked as such (401), not silently repaired.
    schema.config.auth.openapi = OpenAPIAuthConfig(schemes={"ApiKey": {"bearer": write_key}})
    accepted = schema.config.checks.positive_data_acceptance
    accepted.expected_statuses = [*accepted.expected_statuses, "422"]
    return schema


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_api_conforms_to_its_schema(
    api_schema: schemathesis.BaseSchema,
    api_server: ApiProcess,
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    spec = _PATHS[path][method.lower()]
    if mode == GenerationMode.NEGATIVE and not spec.get("parameters") and "requestBody" not in spec:
        pytest.skip("no parameters or body to make invalid")
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate()

    try:
        check()
    except BaseException:
        print(api_server.logs()[-4000:])
        raise
