"""Redis SIGKILLed mid-stream and started again 2 s later from its AOF, same port and data."""

from __future__ import annotations

from tests.faults import checks
from tests.faults.deployment import SplitDeployment
from tests.faults.flow import FaultRun
from tests.faults.redis_server import RestartableRedis

DOWN_SECONDS = 2.0
RECOVERY_TIMEOUT_SECONDS = 20.0
READY_AGAIN_WITHIN_SECONDS = 10.0


def test_a_redis_restart_mid_stream_loses_and_repeats_nothing(
    split_deployment: SplitDeployment, fault_redis: RestartableRedis
) -> None:
    topology = split_deployment.start()
    run = FaultRun(
        f"redis-restart {topology.stores.kind}",
        split_deployment.harness,
        topology,
        total=1600,
        rate=200,
        pause_fraction=0.3,
    )
    try:
        run.start_load()
        run.fault_begins()
        fault_redis.kill()
        run.driver.resume()  # the load keeps trying while Redis is down
        run.hold(DOWN_SECONDS)
        fault_redis.start()
        run.fault_ends()
        problems = run.outcome(RECOVERY_TIMEOUT_SECONDS)
        problems += run.health_problems("keys", "projections")
        problems += run.readiness_problems("keys", "projections", within=READY_AGAIN_WITHIN_SECONDS)
        checks.assert_no_problems(problems)
    finally:
        run.close()
