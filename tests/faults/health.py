"""A background sampler of ``/health`` and ``/ready``: every ~100 ms, per service, status and
latency of each answer, over the whole test. The polling runs in a process of its own
(``health_probe.py``); this side reads what it recorded."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.faults.processes import ManagedProcess, ProcessHarness

SAMPLE_INTERVAL_SECONDS = 0.1
PROBE = Path(__file__).with_name("health_probe.py")
PROBE_NAME = "health-probe"


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the request was sent
    service: str
    path: str
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    latency: float
    error: str


class HealthSampler:
    def __init__(self, harness: ProcessHarness, services: dict[str, str]) -> None:
        """``services``: name -> base URL (``http://host:port``)."""
        self.harness = harness
        self.services = services
        self.out = harness.workdir / f"health-samples-{len(harness.started)}.jsonl"
        self.process: ManagedProcess | None = None

    def start(self) -> HealthSampler:
        targets = [f"{name}={url}" for name, url in self.services.items()]
        interval = str(SAMPLE_INTERVAL_SECONDS)
        # -P: the probe's own directory stays off sys.path (stdlib only, by path)
        command = [sys.executable, "-P", str(PROBE), str(self.out), interval, *targets]
        self.process = self.harness.start(PROBE_NAME, command, self.harness.env())
        deadline = time.monotonic() + 10
        while not self._lines():
            if time.monotonic() > deadline or not self.process.alive():
                raise AssertionError(f"the health probe records nothing: {self.process.describe()}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.alive():
            self.process.popen.send_signal(signal.SIGTERM)
            try:
                self.process.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.popen.kill()

    def _lines(self) -> list[str]:
        try:
            text = self.out.read_text()
        except FileNotFoundError:
            return []
        return [line for line in text.split("\n")[:-1] if line]  # the last may be partial

    def of(
        self, service: str, path: str, start: float = 0.0, end: float = float("inf")
    ) -> list[Sample]:
        samples = [Sample(**json.loads(line)) for line in self._lines()]
        return [
            s for s in samples if s.service == service and s.path == path and start <= s.at <= end
        ]
