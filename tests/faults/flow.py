"""One fault run: load going, health sampled, the fault injected at the plan's pause point,
then recovery measured and every invariant checked."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from tests.faults import checks
from tests.faults.deployment import Topology
from tests.faults.health import HealthSampler
from tests.faults.load import LoadDriver, Plan, build_plan
from tests.faults.processes import ProcessHarness

COMPLETION_TIMEOUT_SECONDS = 60.0


@dataclass
class FaultRun:
    label: str  # e.g. "redis-restart sqlite", printed with the recovery time
    harness: ProcessHarness
    topology: Topology
    total: int
    rate: float
    pause_fraction: float | None = 0.3
    plan: Plan = field(init=False)
    driver: LoadDriver = field(init=False)
    sampler: HealthSampler = field(init=False)
    fault_start: float = 0.0
    fault_end: float = 0.0
    answered_at_fault_end: int = 0
    recovered: bool = False
    checks_started: float = float("inf")  # the checks' own CPU load is not the service's

    def __post_init__(self) -> None:
        self.client = redis.Redis.from_url(self.topology.redis_url, socket_timeout=10)
        self.plan = build_plan(
            "org-" + self.topology.streams.commands.split(".")[0], self.total, self.pause_fraction
        )
        self.sampler = HealthSampler(
            self.harness,
            {"keys": self.topology.keys_url, "projections": self.topology.projections_url},
        )
        self.driver = LoadDriver(
            self.topology.redis_url, self.topology.streams.commands, self.plan, self.rate
        )

    def start_load(self) -> FaultRun:
        """Sample health, send the load, and return once the fault point is reached."""
        self.sampler.start()
        self.driver.start()
        if self.plan.pause_before is not None:
            self.driver.wait_paused()
        return self

    def fault_begins(self) -> None:
        self.fault_start = time.monotonic()

    def fault_ends(self) -> None:
        """Recovery is then measured up to the first command sent after this moment: a
        killed consumer that nobody restarts has no backlog, but does not answer that one."""
        self.fault_end = time.monotonic()
        self.answered_at_fault_end = min(self.driver.sent_count + 1, len(self.plan.commands))

    def hold(self, seconds: float) -> None:
        """Keep the fault for ``seconds`` while the load goes on (the only bare sleep)."""
        time.sleep(max(0.0, self.fault_start + seconds - time.monotonic()))

    def recover(self, timeout: float) -> float:
        """Measure and print the recovery time: from the fault's end until what was sent by
        then is answered, published and projected."""
        try:
            seconds = checks.measure_recovery(
                self.client,
                self.topology,
                self.fault_end,
                self.answered_at_fault_end,
                timeout,
                self.harness,
            )
        except AssertionError:
            print(f"RECOVERY {self.label}: none within {timeout:.0f} s")
            raise
        print(f"RECOVERY {self.label}: {seconds:.1f} s")
        self.recovered = True
        return seconds

    def finish(self) -> list[str]:
        """Let the load end, wait until all of it is through, and check (a) to (d)."""
        sent = self.driver.join()
        checks.wait_caught_up(
            self.client, self.topology, len(sent), COMPLETION_TIMEOUT_SECONDS, self.harness
        )
        self.checks_started = time.monotonic()
        problems = checks.invariant_problems(
            self.client, self.topology, self.harness, self.plan, sent
        )
        self.sampler.stop()
        return problems

    def outcome(self, recovery_timeout: float) -> list[str]:
        """Recovery within ``recovery_timeout`` s, then (a) to (d); what went wrong, if any.
        Without a recovery the invariants are not checked (they would only wait again)."""
        try:
            self.recover(recovery_timeout)
        except AssertionError as error:
            self.sampler.stop()
            return [f"{self.label}: no recovery: {error}"]
        return self.finish()

    def health_problems(self, *services: str) -> list[str]:
        """(e) every /health sampled until the checks began answered 200 within 100 ms
        (export and verify-projections then compete for the same cores)."""
        return [
            problem
            for service in services
            for problem in checks.health_problems(self.sampler, service, end=self.checks_started)
        ]

    def readiness_problems(self, *services: str, within: float) -> list[str]:
        """(e) /ready answered 503 during the fault and 200 within ``within`` s after."""
        return [
            problem
            for service in services
            for problem in checks.readiness_problems(
                self.sampler, service, self.fault_start, self.fault_end, within
            )
        ]

    def close(self) -> None:
        self.sampler.stop()
        self.driver.stop()
        self.client.close()
