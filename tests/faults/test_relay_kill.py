"""The relay (the keys service's child process) SIGKILLed mid-stream: the keys service starts
a new one within 1 s and every stored event is published once, in order."""

from __future__ import annotations

import time

import psutil

from tests.faults import checks
from tests.faults.deployment import SplitDeployment
from tests.faults.flow import FaultRun
from tests.faults.processes import relay_children, wait_gone

RELAY_BACK_WITHIN_SECONDS = 1.0
RECOVERY_TIMEOUT_SECONDS = 20.0


def the_relay(keys_pid: int, timeout: float = 10.0) -> psutil.Process:
    checks.wait_until(
        lambda: len(relay_children(keys_pid)) == 1,
        timeout,
        lambda: f"children of the keys service: {relay_children(keys_pid)}",
    )
    return relay_children(keys_pid)[0]


def test_a_killed_relay_is_replaced_and_publishes_everything_once(
    split_deployment: SplitDeployment,
) -> None:
    topology = split_deployment.start()
    assert split_deployment.keys is not None
    keys_pid = split_deployment.keys.pid
    run = FaultRun(
        f"relay-kill {topology.stores.kind}",
        split_deployment.harness,
        topology,
        total=1500,
        rate=200,
        pause_fraction=0.3,
    )
    try:
        run.start_load()
        relay = the_relay(keys_pid)
        run.fault_begins()
        relay.kill()
        assert not wait_gone([relay], timeout=5)
        run.fault_ends()
        run.driver.resume()
        problems = []
        deadline = time.monotonic() + RELAY_BACK_WITHIN_SECONDS
        while not [p for p in relay_children(keys_pid) if p.pid != relay.pid]:
            if time.monotonic() > deadline:
                problems.append(f"no new relay within {RELAY_BACK_WITHIN_SECONDS} s of the kill")
                break
            time.sleep(0.01)
        problems += run.outcome(RECOVERY_TIMEOUT_SECONDS)
        problems += run.health_problems("keys", "projections")
        checks.assert_no_problems(problems)
    finally:
        run.close()
