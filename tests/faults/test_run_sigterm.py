"""SIGTERM to ``apikeys run`` in the middle of a load: it exits within 10 s and every process
of its tree (embedded Redis, keys service, relay, projection service) is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil

from tests.faults.deployment import RunDeployment
from tests.faults.flow import FaultRun
from tests.faults.processes import describe_process, wait_gone

EXIT_WITHIN_SECONDS = 10.0


def test_sigterm_stops_apikeys_run_and_its_whole_tree(run_deployment: RunDeployment) -> None:
    topology = run_deployment.start()
    supervisor = run_deployment.run
    assert supervisor is not None
    run = FaultRun(
        "run-sigterm sqlite",
        run_deployment.harness,
        topology,
        total=800,
        rate=300,
        pause_fraction=0.5,
    )
    try:
        run.start_load()
        tree = psutil.Process(supervisor.pid).children(recursive=True)
        assert len(tree) >= 4, f"expected Redis, keys, relay, projections: {tree}"
        run.driver.stop()  # mid-load: commands are still being worked through
        signalled = time.monotonic()
        os.kill(supervisor.pid, signal.SIGTERM)
        problems = []
        try:
            supervisor.popen.wait(timeout=EXIT_WITHIN_SECONDS)
            print(f"STOPPED run-sigterm sqlite: {time.monotonic() - signalled:.1f} s")
        except subprocess.TimeoutExpired:
            problems.append(f"apikeys run still running {EXIT_WITHIN_SECONDS:.0f} s after SIGTERM")
        remaining = max(0.1, signalled + EXIT_WITHIN_SECONDS - time.monotonic())
        left = [describe_process(p) for p in wait_gone(tree, remaining)]
        if left:
            problems.append(f"{len(left)} processes of its tree remain after SIGTERM: {left}")
        assert not problems, "\n".join(problems)
    finally:
        run.close()
