"""The keys service's settings, read from the environment once at start-up."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from contracts import streams
from contracts.partitions import PARTITIONS_KEY, partition_streams
from services.common.http_limits import HttpLimits
from services.common.redis_client import cluster_setting

DEFAULT_EVENT_STORE = "sqlite:///var/events.db"
# entries per in-memory cache: the command path's aggregates and recent outcomes, the relay's
# folded aggregates; a miss costs one store read, so memory is bounded by this, not by history
DEFAULT_CACHE_SIZE = 10_000
# an aggregate gets a snapshot every this many events: a load replays fewer events than this
DEFAULT_SNAPSHOT_INTERVAL = 200
# a partition's (and the relay's) lease lasts this long unless renewed: a dead replica's
# partitions are taken over within about this long
DEFAULT_LEASE_MS = 3000


@dataclass(frozen=True)
class KeysSettings:
    redis_url: str
    redis_cluster: bool = False
    event_store: str = DEFAULT_EVENT_STORE
    commands_stream: str = streams.COMMANDS_STREAM
    results_stream: str = streams.RESULTS_STREAM
    events_stream: str = streams.EVENTS_STREAM
    dead_letter_stream: str = streams.DEAD_LETTER_STREAM
    group: str = streams.KEYS_GROUP
    consumer: str = "keys-1"
    batch_size: int = 500
    max_deliveries: int = 5
    reclaim_idle_ms: int = 30_000
    health_addr: str = "127.0.0.1:8081"
    relay_in_process: bool = False
    max_relay_lag_seconds: float = 10.0
    http_limits: HttpLimits = field(default_factory=HttpLimits)
    replay_requests_stream: str = streams.REPLAY_REQUESTS_STREAM
    replay_max_events: int = 10_000
    replay_ttl_seconds: int = 300
    results_retention_seconds: float = 86_400.0
    results_max_entries: int = 1_000_000
    events_retention_seconds: float = 604_800.0
    events_max_entries: int = 1_000_000
    dead_letter_max_entries: int = 100_000
    trim_streams: bool = True
    cache_size: int = DEFAULT_CACHE_SIZE
    snapshot_interval: int = DEFAULT_SNAPSHOT_INTERVAL
    partitions: int = 1
    partitions_key: str = PARTITIONS_KEY
    lease_ms: int = DEFAULT_LEASE_MS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KeysSettings:
        env = os.environ if env is None else env
        return cls(
            redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            redis_cluster=cluster_setting(env),
            event_store=env.get("APIKEYS_EVENT_STORE", DEFAULT_EVENT_STORE),
            commands_stream=env.get("APIKEYS_COMMANDS_STREAM", streams.COMMANDS_STREAM),
            results_stream=env.get("APIKEYS_RESULTS_STREAM", streams.RESULTS_STREAM),
            events_stream=env.get("APIKEYS_EVENTS_STREAM", streams.EVENTS_STREAM),
            dead_letter_stream=env.get("APIKEYS_DEAD_LETTER_STREAM", streams.DEAD_LETTER_STREAM),
            group=env.get("APIKEYS_KEYS_GROUP", streams.KEYS_GROUP),
            consumer=env.get("APIKEYS_CONSUMER_NAME", f"keys-{socket.gethostname()}"),
            batch_size=int(env.get("APIKEYS_BATCH_SIZE", "500")),
            max_deliveries=int(env.get("APIKEYS_MAX_DELIVERIES", "5")),
            reclaim_idle_ms=int(env.get("APIKEYS_RECLAIM_IDLE_MS", "30000")),
            health_addr=env.get("APIKEYS_KEYS_HEALTH_ADDR", "127.0.0.1:8081"),
            relay_in_process=env.get("APIKEYS_RELAY", "process") == "inline",
            max_relay_lag_seconds=float(env.get("APIKEYS_MAX_RELAY_LAG_SECONDS", "10")),
            http_limits=HttpLimits.from_env(env),
            replay_requests_stream=env.get(
                "APIKEYS_REPLAY_REQUESTS_STREAM", streams.REPLAY_REQUESTS_STREAM
            ),
            replay_max_events=int(env.get("APIKEYS_REPLAY_MAX_EVENTS", "10000")),
            replay_ttl_seconds=int(env.get("APIKEYS_REPLAY_TTL_SECONDS", "300")),
            results_retention_seconds=float(env.get("APIKEYS_RESULTS_RETENTION_SECONDS", "86400")),
            results_max_entries=_positive(env, "APIKEYS_RESULTS_MAX_ENTRIES", 1_000_000),
            events_retention_seconds=float(env.get("APIKEYS_EVENTS_RETENTION_SECONDS", "604800")),
            events_max_entries=_positive(env, "APIKEYS_EVENTS_MAX_ENTRIES", 1_000_000),
            dead_letter_max_entries=_positive(env, "APIKEYS_DEAD_LETTER_MAX_ENTRIES", 100_000),
            trim_streams=env.get("APIKEYS_TRIM_STREAMS", "true").lower() != "false",
            cache_size=_positive(env, "APIKEYS_CACHE_SIZE", DEFAULT_CACHE_SIZE),
            snapshot_interval=int(
                env.get("APIKEYS_SNAPSHOT_INTERVAL", str(DEFAULT_SNAPSHOT_INTERVAL))
            ),
            partitions=_positive(env, "APIKEYS_PARTITIONS", 1),
            partitions_key=env.get("APIKEYS_PARTITIONS_KEY", PARTITIONS_KEY),
            lease_ms=_at_least(env, "APIKEYS_LEASE_MS", DEFAULT_LEASE_MS, 300),
        )

    def partition_streams(self) -> list[str]:
        """The commands streams this service consumes: one per partition."""
        return partition_streams(self.commands_stream, self.partitions)


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    """A size that must be at least 1 (a stream's entry limit keeps the newest entry, which a
    relay resumes after; a cache of nothing would reload every aggregate)."""
    value = int(env.get(name, str(default)))
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


def _at_least(env: Mapping[str, str], name: str, default: int, least: int) -> int:
    value = int(env.get(name, str(default)))
    if value < least:
        raise ValueError(f"{name} must be at least {least}, not {value}")
    return value
