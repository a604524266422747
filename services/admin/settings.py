"""The admin service's settings, read from the environment once at start-up."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from contracts.partitions import PARTITIONS_KEY
from contracts.redis_layout import cluster_setting
from contracts.streams import COMMANDS_STREAM, RESULTS_STREAM
from services.common.http_limits import HttpLimits

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, kw_only=True)
class AdminSettings:
    host: str = "127.0.0.1"
    port: int = 8082
    projections_url: str = "http://127.0.0.1:8080"
    caller_token: str | None = None
    user_header: str = "X-Forwarded-User"
    trusted_proxies: tuple[Network, ...] = ()
    dev_user: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False
    partitions: int | None = None  # None: the number the keys service published
    partitions_key: str = PARTITIONS_KEY
    commands_stream: str = COMMANDS_STREAM
    results_stream: str = RESULTS_STREAM
    command_timeout: float = 10.0
    csrf_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    http_limits: HttpLimits = field(default_factory=HttpLimits)

    def __post_init__(self) -> None:
        if self.dev_user is not None and not is_loopback(self.host):
            raise ValueError(
                "APIKEYS_ADMIN_DEV_USER signs every request in: it is allowed only with a "
                f"loopback APIKEYS_ADMIN_ADDR, not {self.host}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AdminSettings:
        env = os.environ if env is None else env
        host, port = split_addr(env.get("APIKEYS_ADMIN_ADDR", "127.0.0.1:8082"))
        projections = env.get("APIKEYS_HTTP_ADDR", "127.0.0.1:8080")
        extra = {}
        if env.get("APIKEYS_ADMIN_CSRF_SECRET"):
            extra["csrf_secret"] = env["APIKEYS_ADMIN_CSRF_SECRET"]
        return cls(
            host=host,
            port=port,
            projections_url=env.get("APIKEYS_ADMIN_PROJECTIONS_URL", f"http://{projections}"),
            caller_token=env.get("APIKEYS_ADMIN_CALLER_TOKEN") or None,
            user_header=env.get("APIKEYS_ADMIN_USER_HEADER", cls.user_header),
            trusted_proxies=parse_networks(env.get("APIKEYS_ADMIN_TRUSTED_PROXIES", "")),
            dev_user=env.get("APIKEYS_ADMIN_DEV_USER") or None,
            redis_url=env.get("REDIS_URL", cls.redis_url),
            redis_cluster=cluster_setting(env),
            partitions=int(env["APIKEYS_PARTITIONS"]) if env.get("APIKEYS_PARTITIONS") else None,
            partitions_key=env.get("APIKEYS_PARTITIONS_KEY", PARTITIONS_KEY),
            commands_stream=env.get("APIKEYS_COMMANDS_STREAM", cls.commands_stream),
            results_stream=env.get("APIKEYS_RESULTS_STREAM", cls.results_stream),
            command_timeout=float(env.get("APIKEYS_ADMIN_COMMAND_TIMEOUT", cls.command_timeout)),
            http_limits=HttpLimits.from_env(env),
            **extra,
        )

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"


def split_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"APIKEYS_ADMIN_ADDR must be host:port, got {addr!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or networks (``10.0.0.5``, ``10.0.0.0/24``, ``::1``)."""
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in text.split(",")
            if part.strip()
        )
    except ValueError as error:
        raise ValueError(f"APIKEYS_ADMIN_TRUSTED_PROXIES: {error}") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
