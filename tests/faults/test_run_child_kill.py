"""Under ``apikeys run``, the keys service, the projection service or the embedded Redis
SIGKILLed mid-stream: ``apikeys run`` starts it again and the whole is caught up within 10 s."""

from __future__ import annotations

import pytest

from tests.faults import checks
from tests.faults.deployment import RunDeployment
from tests.faults.flow import FaultRun
from tests.faults.processes import children_running, embedded_redis_children, wait_gone

WHOLE_AGAIN_WITHIN_SECONDS = 10.0
MODULES = {"keys": "services.keys", "projections": "services.projections"}


@pytest.mark.parametrize("victim", ["keys", "projections", "redis"])
def test_a_killed_service_is_restarted_and_the_whole_catches_up(
    run_deployment: RunDeployment, victim: str
) -> None:
    topology = run_deployment.start()
    supervisor = run_deployment.run
    assert supervisor is not None
    run = FaultRun(
        f"run-{victim}-kill sqlite",
        run_deployment.harness,
        topology,
        total=1500,
        rate=200,
        pause_fraction=0.3,
    )
    try:
        run.start_load()
        if victim == "redis":
            found = embedded_redis_children(supervisor.pid)
        else:
            found = children_running(supervisor.pid, MODULES[victim])
        assert len(found) == 1, f"children of apikeys run that are the {victim}: {found}"
        run.fault_begins()
        found[0].kill()
        assert not wait_gone(found, timeout=5)
        run.fault_ends()
        run.driver.resume()
        problems = run.outcome(WHOLE_AGAIN_WITHIN_SECONDS)
        if not supervisor.alive():
            problems.append(f"apikeys run exited: {supervisor.describe()}")
        if victim in MODULES:
            problems += checks.came_back_problems(
                run.sampler, victim, "/health", run.fault_end, WHOLE_AGAIN_WITHIN_SECONDS
            )
        for service in MODULES:
            if service != victim:
                problems += run.health_problems(service)
        checks.assert_no_problems(problems)
    finally:
        run.close()
