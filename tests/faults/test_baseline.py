"""No fault: the load, the sampler and every invariant check pass on a healthy system, so a
fault test that fails is telling about the fault."""

from __future__ import annotations

from tests.faults import checks
from tests.faults.deployment import SplitDeployment
from tests.faults.flow import FaultRun


def test_without_a_fault_every_invariant_holds(split_deployment: SplitDeployment) -> None:
    topology = split_deployment.start()
    run = FaultRun(
        f"baseline {topology.stores.kind}",
        split_deployment.harness,
        topology,
        total=1000,
        rate=300,
        pause_fraction=None,
    )
    try:
        run.start_load()
        problems = run.finish()
        problems += run.health_problems("keys", "projections")
        checks.assert_no_problems(problems)
    finally:
        run.close()
