"""The link between the keys service (consumer and relay) and Redis cut for 10 s; the load and
the projection service still reach Redis directly. Disable/Enable pairs straddle the cut."""

from __future__ import annotations

from collections.abc import Callable

from tests.faults import checks
from tests.faults.deployment import SplitDeployment
from tests.faults.flow import FaultRun
from tests.faults.proxy import TcpProxy
from tests.faults.redis_server import RestartableRedis

CUT_SECONDS = 10.0
RECOVERY_TIMEOUT_SECONDS = 20.0
READY_AGAIN_WITHIN_SECONDS = 10.0


def test_a_redis_cut_of_the_keys_service_loses_and_repeats_nothing(
    split_deployment: SplitDeployment,
    fault_redis: RestartableRedis,
    tcp_proxy: Callable[[str, int], TcpProxy],
) -> None:
    proxy = tcp_proxy("127.0.0.1", fault_redis.port)
    topology = split_deployment.start(keys_redis_url=f"redis://127.0.0.1:{proxy.port}/0")
    run = FaultRun(
        f"redis-cut {topology.stores.kind}",
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
        run.driver.resume()  # the pair at the fault point: Disable before the cut, Enable in it
        run.hold(CUT_SECONDS)
        proxy.restore()
        run.fault_ends()
        problems = run.outcome(RECOVERY_TIMEOUT_SECONDS)
        problems += run.health_problems("keys", "projections")
        problems += run.readiness_problems("keys", within=READY_AGAIN_WITHIN_SECONDS)
        checks.assert_no_problems(problems)
    finally:
        run.close()
