"""The product as processes on a Redis Cluster: keys-service and projection replicas started by
a test, commands sent and results and events read as an upstream would, with a cluster client."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from redis import exceptions as redis_errors

from services.local.embedded_redis import free_port
from tests.faults import http_get
from tests.faults.deployment import Streams, wait_healthy
from tests.faults.processes import ManagedProcess, ProcessHarness
from tests.support.redis_cluster import LocalRedisCluster

Command = dict[str, Any]


class ClusterDeployment:
    def __init__(
        self,
        harness: ProcessHarness,
        cluster: LocalRedisCluster,
        event_store: str,
        streams: Streams,
        **settings: str,
    ) -> None:
        self.harness = harness
        self.cluster = cluster
        self.event_store = event_store
        self.streams = streams
        self.settings = settings  # extra settings for every keys-service replica
        self.client = cluster.client()
        self.sender = cluster.client(retries=0)  # its failures are seen and counted here
        self.projections: dict[str, str] = {}  # name -> base URL
        self.resent: set[str] = set()  # command ids sent again (lost with a primary's tail)
        self.retried: set[str] = set()  # command ids of chunks sent again after an error

    def env(self, **settings: str) -> dict[str, str]:
        return self.harness.env(
            REDIS_URL=self.cluster.nodes_url, APIKEYS_REDIS_CLUSTER="true", **settings
        )

    def start_keys(self, name: str) -> ManagedProcess:
        addr = f"127.0.0.1:{free_port()}"
        process = self.harness.python(
            name,
            ["services.keys"],
            self.env(
                APIKEYS_EVENT_STORE=self.event_store,
                APIKEYS_KEYS_HEALTH_ADDR=addr,
                APIKEYS_CONSUMER_NAME=name,
                APIKEYS_RECLAIM_IDLE_MS="1000",
                **self.streams.env(),
                **self.settings,
            ),
        )
        wait_healthy(process, f"http://{addr}/health")
        return process

    def start_projection(self, name: str, view_store: str) -> ManagedProcess:
        addr = f"127.0.0.1:{free_port()}"
        process = self.harness.python(
            name,
            ["services.projections"],
            self.env(
                APIKEYS_EVENTS_STREAM=self.streams.events,
                APIKEYS_VIEW_STORE=view_store,
                APIKEYS_HTTP_ADDR=addr,
            ),
        )
        wait_healthy(process, f"http://{addr}/health")
        self.projections[name] = f"http://{addr}"
        return process

    def projection_position(self, name: str) -> int:
        answer = http_get.get(f"{self.projections[name]}/health", timeout=2.0)
        return int(answer.body["position"]) if answer.status == 200 else -1

    # -- the wire, as an upstream sees it ---------------------------------------------------

    def send(
        self, commands: Sequence[Command], stream: Callable[[Command], str], rate: float = 0
    ) -> None:
        """XADD each command to its stream, one at a time and in order, at most ``rate`` a
        second (0: at once), as a careful publisher does. A command whose XADD failed is sent
        again (its first XADD may have been applied, then it is answered ``duplicate``, or
        lost with a primary's tail) and is recorded in ``retried``: such a command may be
        applied after commands sent after it. (A pipeline is not used: across a failover,
        redis-py's cluster pipeline sends the failed part of a pipeline again by itself, which
        reorders commands without telling the sender.)"""
        started = time.monotonic()
        for sent, command in enumerate(commands, 1):
            self._send_one(command, stream(command))
            if rate and sent % 100 == 0:
                ahead = sent / rate - (time.monotonic() - started)
                time.sleep(max(0.0, ahead))

    def _send_one(self, command: Command, stream: str) -> None:
        data = json.dumps(command)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sender.xadd(stream, {"__data__": data})
                return
            except (redis_errors.RedisError, redis_errors.RedisClusterException, OSError):
                self.retried.add(command["command_id"])
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def read(self, stream: str) -> list[tuple[str, dict[str, Any]]]:
        entries: Any = retry_through_failover(lambda: self.client.xrange(stream))
        return [(i.decode(), json.loads(f[b"__data__"])) for i, f in entries]

    def results_by_command(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for _, result in self.read(self.streams.results):
            found[result["command_id"]].append(result)
        return found

    def close(self) -> None:
        self.client.close()
        self.sender.close()


def retry_through_failover(call: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except (redis_errors.RedisError, redis_errors.RedisClusterException, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")
