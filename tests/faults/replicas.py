"""Several keys-service replicas as processes on one Redis and one event store, and what a test
needs to watch them: who holds which partition, commands sent to each organization's
partition, results read back per command."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from contracts.partitions import commands_stream_for, partition_streams
from services.keys.partitions.leases import lease_key
from services.local.embedded_redis import free_port
from tests.faults import checks
from tests.faults.deployment import StoreUrls, Streams, wait_healthy
from tests.faults.processes import ManagedProcess, ProcessHarness

LEASE_MS = 3000  # the default: failover times measured are the product's


@dataclass
class Replicas:
    harness: ProcessHarness
    redis_url: str
    stores: StoreUrls
    streams: Streams
    partitions: int
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    health: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = redis.Redis.from_url(self.redis_url, socket_timeout=10)

    def start(self, name: str, event_store: str | None = None, **extra: str) -> ManagedProcess:
        """Start replica ``name`` (its consumer name), reaching the store at ``event_store``
        (a proxy) or directly."""
        addr = f"127.0.0.1:{free_port()}"
        process = self.harness.python(
            name,
            ["services.keys"],
            self.harness.env(
                REDIS_URL=self.redis_url,
                APIKEYS_EVENT_STORE=event_store or self.stores.event_store,
                APIKEYS_KEYS_HEALTH_ADDR=addr,
                APIKEYS_CONSUMER_NAME=name,
                APIKEYS_PARTITIONS=str(self.partitions),
                APIKEYS_PARTITIONS_KEY=f"{self.streams.commands}.partitions",
                APIKEYS_LEASE_MS=str(LEASE_MS),
                **self.streams.env(),
                **extra,
            ),
        )
        wait_healthy(process, f"http://{addr}/health")
        self.processes[name] = process
        self.health[name] = f"http://{addr}"
        return process

    @property
    def partition_streams(self) -> list[str]:
        return partition_streams(self.streams.commands, self.partitions)

    def holder(self, stream: str) -> str | None:
        """The consumer name holding a partition's lease (None when free)."""
        value: Any = self.client.get(lease_key(stream))
        return value.decode().split("|", 1)[0] if value else None

    def holders(self) -> dict[str, str | None]:
        return {stream: self.holder(stream) for stream in self.partition_streams}

    def wait_all_held(self, timeout: float = 30.0, among: set[str] | None = None) -> None:
        def held() -> bool:
            names = self.holders().values()
            return all(n is not None and (among is None or n in among) for n in names)

        checks.wait_until(held, timeout, lambda: f"partitions not all held: {self.holders()}")

    def send(self, command: dict[str, Any]) -> str:
        stream = commands_stream_for(
            command["organization_id"], self.streams.commands, self.partitions
        )
        entry_id: Any = self.client.xadd(stream, {"__data__": json.dumps(command)})
        return str(entry_id.decode())

    def results(self) -> list[dict[str, Any]]:
        return [body for _, body in checks.read_stream(self.client, self.streams.results)]

    def wait_results(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        checks.wait_until(
            lambda: self.client.xlen(self.streams.results) >= count,
            timeout,
            lambda: (
                f"{self.client.xlen(self.streams.results)} of {count} results; "
                f"holders {self.holders()}"
                + "".join(f"\n--- {p.describe()}" for p in self.processes.values())
            ),
        )
        return self.results()

    def wait_answered(self, command_id: str, timeout: float) -> float:
        """Seconds until a result for ``command_id`` is on the results stream."""
        started = time.monotonic()
        checks.wait_until(
            lambda: any(r.get("command_id") == command_id for r in self.results()[-200:]),
            timeout,
            lambda: f"{command_id} not answered within {timeout} s; holders {self.holders()}",
            interval=0.02,
        )
        return time.monotonic() - started

    def close(self) -> None:
        self.client.close()
