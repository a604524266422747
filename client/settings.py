"""Where the product is: read from the same environment variables as the services, or given."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from client.partitions import PARTITIONS_KEY
from contracts.redis_layout import cluster_setting
from contracts.streams import COMMANDS_STREAM, EVENTS_STREAM, RESULTS_STREAM


@dataclass(frozen=True)
class ClientSettings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    # a Redis Cluster (redis_url names any node, or several comma-separated): every stream is
    # one key, so each read and write keeps to one hash slot
    redis_cluster: bool = False
    projection_url: str = "http://127.0.0.1:8080"
    commands_stream: str = COMMANDS_STREAM
    results_stream: str = RESULTS_STREAM
    events_stream: str = EVENTS_STREAM
    # None: take the number the keys service published (1 when it published none); a number:
    # refuse to publish when the keys service published a different one
    partitions: int | None = None
    partitions_key: str = PARTITIONS_KEY  # where the keys service published its number
    caller_token: str | None = None  # sent as "Authorization: Bearer ..." on every query
    send_timeout: float = 10.0  # seconds to wait for a result before resending
    resends: int = 2  # resends (same command_id) after a timeout before CommandTimeout
    max_in_flight: int = 10_000  # sends awaiting a result at once; more wait their turn
    query_timeout: float = 10.0
    max_connections: int = 100  # HTTP connections kept to the projection service

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        env = os.environ if environ is None else environ
        partitions = env.get("APIKEYS_PARTITIONS")
        return cls(
            redis_url=env.get("REDIS_URL", cls.redis_url),
            redis_cluster=cluster_setting(env),
            projection_url=env.get("APIKEYS_PROJECTION_URL", cls.projection_url),
            commands_stream=env.get("APIKEYS_COMMANDS_STREAM", COMMANDS_STREAM),
            results_stream=env.get("APIKEYS_RESULTS_STREAM", RESULTS_STREAM),
            events_stream=env.get("APIKEYS_EVENTS_STREAM", EVENTS_STREAM),
            partitions=int(partitions) if partitions else None,
            partitions_key=env.get("APIKEYS_PARTITIONS_KEY", PARTITIONS_KEY),
            caller_token=env.get("APIKEYS_CALLER_TOKEN") or None,
        )
