"""PostgreSQL cut for 10 s mid-stream: both services reach it through the test's proxy (the
server itself is never stopped)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.faults import checks
from tests.faults.deployment import SplitDeployment
from tests.faults.flow import FaultRun
from tests.faults.proxy import TcpProxy

CUT_SECONDS = 10.0
RECOVERY_TIMEOUT_SECONDS = 20.0
READY_AGAIN_WITHIN_SECONDS = 10.0


@pytest.mark.parametrize(
    "store", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_postgres_cut_loses_and_repeats_nothing(
    split_deployment: SplitDeployment, tcp_proxy: Callable[[str, int], TcpProxy]
) -> None:
    proxy = tcp_proxy(*split_deployment.stores.postgres_address())
    topology = split_deployment.start(stores=split_deployment.stores.routed_through(proxy.port))
    run = FaultRun(
        "postgres-cut postgres",
        split_deployment.harness,
        topology,
        total=2800,
        rate=200,
        pause_fraction=0.15,
    )
    try:
        run.start_load()
        run.fault_begins()
        proxy.cut()
        run.driver.resume()
        run.hold(CUT_SECONDS)
        proxy.restore()
        run.fault_ends()
        problems = run.outcome(RECOVERY_TIMEOUT_SECONDS)
        if run.recovered:
            problems += checks.stored_position_problems(topology)
        problems += run.health_problems("keys", "projections")
        problems += run.readiness_problems("keys", "projections", within=READY_AGAIN_WITHIN_SECONDS)
        checks.assert_no_problems(problems)
    finally:
        run.close()
