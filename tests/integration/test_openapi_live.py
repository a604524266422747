"""Schemathesis against the live projection service (a process, with data from the real keys
service): generated requests for every operation, every answer checked against the committed
OpenAPI document (status codes, bodies, headers, server errors). min_position waits are kept
short in this run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from client import SyncClient
from contracts.tokens import CALLER_PREFIX, new_token
from services.local.embedded_redis import free_port
from tests.faults.deployment import wait_healthy
from tests.faults.processes import ProcessHarness
from tests.integration.conftest import Product
from tests.support.callers import entry, write_callers

CASES_PER_OPERATION = 200
ROOT_TOKEN = new_token(CALLER_PREFIX)


@pytest.fixture(scope="module")
def live_schema(
    product: Product, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    with SyncClient(product.settings()) as client:
        organization = f"org-{uuid.uuid4().hex[:8]}"
        client.enable_api_module(organization, raise_on_reject=True)
        client.grant_api_administrator(organization, "alice")
        client.define_location(organization, "plant-7", "Plant 7")
        client.define_role(organization, "viewer", "Viewer", [("view", "everywhere")])
        client.create_key(organization, "alice", "Key", ["plant-7"], ["viewer"], key_id="k1")
    workdir = tmp_path_factory.mktemp("schemathesis")
    harness = ProcessHarness(workdir, marker=f"openapi-{uuid.uuid4().hex[:8]}")
    address = f"127.0.0.1:{free_port()}"
    topology = product.topology
    callers = workdir / "callers.json"  # the document's security holds: a caller is needed
    write_callers(callers, [entry("root", ROOT_TOKEN, ["verify", "check", "list", "audit"], ["*"])])
    try:
        projections = harness.python(
            "projections",
            ["services.projections"],
            harness.env(
                REDIS_URL=topology.redis_url,
                APIKEYS_EVENTS_STREAM=topology.streams.events,
                APIKEYS_VIEW_STORE=f"sqlite:///{workdir / 'views.db'}",
                APIKEYS_HTTP_ADDR=address,
                APIKEYS_MIN_POSITION_WAIT="0.05",
                APIKEYS_CALLERS_FILE=str(callers),
            ),
        )
        wait_healthy(projections, f"http://{address}/health")
        # the document the service serves (tests/unit checks it equals the committed one)
        yield schemathesis.openapi.from_url(f"http://{address}/schema/openapi.json")
    finally:
        assert not harness.kill_everything()


def test_the_live_api_keeps_its_openapi_document(live_schema: schemathesis.BaseSchema) -> None:
    failures = []
    operations = [result.ok() for result in live_schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=CASES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def conforms(case: schemathesis.Case) -> None:
            # a documented 503 (a min_position not applied within the short wait) is an
            # answer, not a failure: every other check runs, and no 500 is allowed
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {ROOT_TOKEN}"},
                excluded_checks=[not_a_server_error],
            )
            assert response.status_code < 500 or response.status_code == 503, response.text

        try:
            conforms()
        except Exception as failure:  # every operation is run; failures are reported together
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
