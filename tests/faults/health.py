"""A background sampler of ``/health`` and ``/ready``: every ~100 ms, per service, status and
latency of each answer, over the whole test."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from tests.faults import http

SAMPLE_INTERVAL_SECONDS = 0.1
CLIENT_TIMEOUT_SECONDS = 2.0  # generous: the latency is measured and asserted separately


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the request was sent
    service: str
    path: str
    status: int | None
    latency: float
    error: str


class HealthSampler:
    def __init__(self, services: dict[str, str]) -> None:
        """``services``: name -> base URL (``http://host:port``)."""
        self.services = services
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, args=(name, url), daemon=True,
                             name=f"health-{name}")
            for name, url in services.items()
        ]

    def start(self) -> HealthSampler:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _poll(self, service: str, base: str) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            for path in ("/health", "/ready"):
                at = time.monotonic()
                answer = http.get(base + path, timeout=CLIENT_TIMEOUT_SECONDS)
                with self._lock:
                    self.samples.append(
                        Sample(at, service, path, answer.status, answer.latency, answer.error)
                    )
            next_tick = max(next_tick + SAMPLE_INTERVAL_SECONDS, time.monotonic())
            self._stop.wait(next_tick - time.monotonic())

    def of(self, service: str, path: str, start: float = 0.0, end: float = float("inf")
           ) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples
                    if s.service == service and s.path == path and start <= s.at <= end]
