"""The product as processes: the two services started alone, or everything under
``apikeys run``; either way a ``Topology`` says where each part is for the checks."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from services.local.embedded_redis import free_port
from tests.faults import http_get
from tests.faults.processes import ManagedProcess, ProcessHarness

START_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Streams:
    commands: str
    results: str
    events: str
    dead_letter: str

    @classmethod
    def unique(cls, prefix: str) -> Streams:
        return cls(
            f"{prefix}.commands", f"{prefix}.results", f"{prefix}.events", f"{prefix}.dead-letter"
        )

    def env(self) -> dict[str, str]:
        return {
            "APIKEYS_COMMANDS_STREAM": self.commands,
            "APIKEYS_RESULTS_STREAM": self.results,
            "APIKEYS_EVENTS_STREAM": self.events,
            "APIKEYS_DEAD_LETTER_STREAM": self.dead_letter,
        }


@dataclass(frozen=True)
class StoreUrls:
    kind: str  # "sqlite" or "postgres"
    event_store: str
    view_store: str

    def routed_through(self, port: int) -> StoreUrls:
        """The same stores reached through 127.0.0.1:<port> (a proxy); PostgreSQL only."""
        if self.kind != "postgres":
            raise ValueError("only a PostgreSQL store is reached over TCP")
        return replace(
            self,
            event_store=_with_port(self.event_store, port),
            view_store=_with_port(self.view_store, port),
        )

    def postgres_address(self) -> tuple[str, int]:
        parts = urlsplit(self.event_store)
        return parts.hostname or "127.0.0.1", parts.port or 5432


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Topology:
    """Where everything is, as seen directly by the test (never through a proxy)."""

    redis_url: str
    streams: Streams
    stores: StoreUrls
    keys_url: str  # http://host:port of the keys service's /health and /ready
    projections_url: str  # http://host:port of the projection service

    def cli_env(self) -> dict[str, str]:
        """What ``apikeys export`` / ``verify-projections`` need, pointed at the real stores."""
        return {
            "REDIS_URL": self.redis_url,
            "APIKEYS_EVENT_STORE": self.stores.event_store,
            "APIKEYS_VIEW_STORE": self.stores.view_store,
            **self.streams.env(),
        }


def wait_healthy(process: ManagedProcess, url: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise AssertionError(f"exited before answering {url}: {process.describe()}")
        if http_get.get(url, timeout=1.0).status == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer 200 in {timeout} s: {process.describe()}")


class SplitDeployment:
    """The keys service and the projection service, each started alone."""

    def __init__(
        self, harness: ProcessHarness, redis_url: str, stores: StoreUrls, streams: Streams
    ) -> None:
        self.harness = harness
        self.redis_url = redis_url
        self.stores = stores
        self.streams = streams
        self.keys_addr = f"127.0.0.1:{free_port()}"
        self.projections_addr = f"127.0.0.1:{free_port()}"
        self.keys: ManagedProcess | None = None
        self.projections: ManagedProcess | None = None

    @property
    def topology(self) -> Topology:
        return Topology(
            self.redis_url,
            self.streams,
            self.stores,
            f"http://{self.keys_addr}",
            f"http://{self.projections_addr}",
        )

    def start(
        self, *, keys_redis_url: str | None = None, stores: StoreUrls | None = None
    ) -> Topology:
        """Start both; the overrides route a service through a proxy."""
        stores = stores or self.stores
        self.keys = self.harness.python(
            "keys",
            ["services.keys"],
            self.harness.env(
                REDIS_URL=keys_redis_url or self.redis_url,
                APIKEYS_EVENT_STORE=stores.event_store,
                APIKEYS_KEYS_HEALTH_ADDR=self.keys_addr,
                APIKEYS_CONSUMER_NAME="keys-fault-test",
                **self.streams.env(),
            ),
        )
        wait_healthy(self.keys, f"http://{self.keys_addr}/health")
        self.projections = self.harness.python(
            "projections",
            ["services.projections"],
            self.harness.env(
                REDIS_URL=self.redis_url,
                APIKEYS_EVENTS_STREAM=self.streams.events,
                APIKEYS_VIEW_STORE=stores.view_store,
                APIKEYS_HTTP_ADDR=self.projections_addr,
            ),
        )
        wait_healthy(self.projections, f"http://{self.projections_addr}/health")
        return self.topology


class RunDeployment:
    """Everything under ``apikeys run``: embedded Redis (AOF), keys service, projections."""

    def __init__(self, harness: ProcessHarness, workdir: Path, streams: Streams) -> None:
        self.harness = harness
        self.var = workdir / "var"
        self.redis_port = free_port()
        self.keys_addr = f"127.0.0.1:{free_port()}"
        self.projections_addr = f"127.0.0.1:{free_port()}"
        self.streams = streams
        self.stores = StoreUrls(
            "sqlite", f"sqlite:///{self.var / 'events.db'}", f"sqlite:///{self.var / 'views.db'}"
        )
        self.run: ManagedProcess | None = None

    @property
    def topology(self) -> Topology:
        return Topology(
            f"redis://127.0.0.1:{self.redis_port}/0",
            self.streams,
            self.stores,
            f"http://{self.keys_addr}",
            f"http://{self.projections_addr}",
        )

    def start(self) -> Topology:
        self.run = self.harness.python(
            "run",
            ["services.cli", "run"],
            self.harness.env(
                APIKEYS_VAR_DIR=str(self.var),
                APIKEYS_EMBEDDED_REDIS_PORT=str(self.redis_port),
                APIKEYS_EVENT_STORE=self.stores.event_store,
                APIKEYS_VIEW_STORE=self.stores.view_store,
                APIKEYS_HTTP_ADDR=self.projections_addr,
                APIKEYS_KEYS_HEALTH_ADDR=self.keys_addr,
                APIKEYS_ADMIN_ADDR=f"127.0.0.1:{free_port()}",
                **self.streams.env(),
            ),
        )
        wait_healthy(self.run, f"http://{self.keys_addr}/health")
        wait_healthy(self.run, f"http://{self.projections_addr}/health")
        return self.topology
