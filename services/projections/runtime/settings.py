"""The projection service's settings, read from the environment once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from contracts.streams import EVENTS_STREAM, REPLAY_REQUESTS_STREAM
from services.common.http_limits import HttpLimits
from services.common.redis_client import cluster_setting
from services.projections.store.schema import DEFAULT_PREFIX

# the variables a parent of workers sets for each of them (not settings for operators)
WORKER_SOCKET_FD = "APIKEYS_HTTP_WORKER_SOCKET_FD"
WORKER_MEMORY_ONLY = "APIKEYS_HTTP_WORKER_MEMORY_ONLY"
MAX_HTTP_WORKERS = 64

# a certificate (chain) file and its private key file, both PEM
TlsFiles = tuple[str, str]


@dataclass(frozen=True, kw_only=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False
    events_stream: str = EVENTS_STREAM
    view_store: str = "sqlite:///var/views.db"
    view_table_prefix: str = DEFAULT_PREFIX
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    min_position_wait: float = 5.0
    ready_lag_seconds: float = 5.0
    read_count: int = 500
    read_block_ms: int = 1000
    refuse_when_stale: bool = False
    http_limits: HttpLimits = field(default_factory=HttpLimits)
    replay_requests_stream: str = REPLAY_REQUESTS_STREAM
    replay_timeout_seconds: float = 30.0
    # who may ask (None: anonymous queries, answered on a loopback address only)
    callers_file: str | None = None
    allow_anonymous_queries: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    # processes serving the address (APIKEYS_HTTP_WORKERS); above 1, this process is their parent
    http_workers: int = 1
    # set by that parent for each worker: the listening socket it inherits, and whether it is
    # the one worker that writes the view store (the others keep the model in memory only)
    worker_socket_fd: int | None = None
    persists: bool = True

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(
                "APIKEYS_TLS_CERT and APIKEYS_TLS_KEY go together: set both or neither"
            )
        if not 1 <= self.http_workers <= MAX_HTTP_WORKERS:
            raise ValueError(
                f"APIKEYS_HTTP_WORKERS must be 1 to {MAX_HTTP_WORKERS}, got {self.http_workers}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        host, port = _split_addr(env.get("APIKEYS_HTTP_ADDR", "127.0.0.1:8080"))
        return cls(
            redis_url=env.get("REDIS_URL", cls.redis_url),
            redis_cluster=cluster_setting(env),
            events_stream=env.get("APIKEYS_EVENTS_STREAM", cls.events_stream),
            view_store=env.get("APIKEYS_VIEW_STORE", cls.view_store),
            view_table_prefix=env.get("APIKEYS_VIEW_TABLE_PREFIX", cls.view_table_prefix),
            http_host=host,
            http_port=port,
            min_position_wait=float(env.get("APIKEYS_MIN_POSITION_WAIT", cls.min_position_wait)),
            ready_lag_seconds=float(env.get("APIKEYS_READY_LAG_SECONDS", cls.ready_lag_seconds)),
            read_count=int(env.get("APIKEYS_READ_COUNT", cls.read_count)),
            refuse_when_stale=_flag(env, "APIKEYS_REFUSE_WHEN_STALE"),
            http_limits=HttpLimits.from_env(env),
            replay_requests_stream=env.get(
                "APIKEYS_REPLAY_REQUESTS_STREAM", cls.replay_requests_stream
            ),
            replay_timeout_seconds=float(
                env.get("APIKEYS_REPLAY_TIMEOUT_SECONDS", cls.replay_timeout_seconds)
            ),
            callers_file=env.get("APIKEYS_CALLERS_FILE") or None,
            allow_anonymous_queries=_flag(env, "APIKEYS_ALLOW_ANONYMOUS_QUERIES"),
            tls_cert=env.get("APIKEYS_TLS_CERT") or None,
            tls_key=env.get("APIKEYS_TLS_KEY") or None,
            http_workers=int(env.get("APIKEYS_HTTP_WORKERS", cls.http_workers)),
            worker_socket_fd=_optional_int(env.get(WORKER_SOCKET_FD)),
            persists=not _flag(env, WORKER_MEMORY_ONLY),
        )

    @property
    def tls_files(self) -> TlsFiles | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        return self.tls_cert, self.tls_key

    @property
    def http_addr(self) -> str:
        return f"{self.http_host}:{self.http_port}"


def _split_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"APIKEYS_HTTP_ADDR must be host:port, got {addr!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "false")
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _optional_int(value: str | None) -> int | None:
    return None if value in (None, "") else int(value)
