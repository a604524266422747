"""The connection limits every HTTP server of the product shares, read from the environment
once (each service's settings object holds them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# well under the common default of 1,024 file descriptors: the process needs its own for Redis,
# the stores, its threads and the connections it is refusing
DEFAULT_MAX_CONNECTIONS = 800


@dataclass(frozen=True)
class HttpLimits:
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    keepalive_seconds: float = 5.0
    header_timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError("APIKEYS_HTTP_MAX_CONNECTIONS must be at least 1")
        if self.keepalive_seconds <= 0 or self.header_timeout_seconds <= 0:
            raise ValueError(
                "APIKEYS_HTTP_KEEPALIVE_SECONDS and APIKEYS_HTTP_HEADER_TIMEOUT_SECONDS "
                "must be more than 0"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HttpLimits:
        return cls(
            max_connections=int(
                env.get("APIKEYS_HTTP_MAX_CONNECTIONS", str(DEFAULT_MAX_CONNECTIONS))
            ),
            keepalive_seconds=float(env.get("APIKEYS_HTTP_KEEPALIVE_SECONDS", "5")),
            header_timeout_seconds=float(env.get("APIKEYS_HTTP_HEADER_TIMEOUT_SECONDS", "5")),
        )
