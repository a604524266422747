"""How every part finds Redis: one server, or with ``APIKEYS_REDIS_CLUSTER=true`` a Redis
Cluster whose ``REDIS_URL`` may name several nodes; and how a key is kept in a stream's hash
slot. Shared by the services and the client library (standard library only)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

CLUSTER_SETTING = "APIKEYS_REDIS_CLUSTER"


def cluster_setting(env: Mapping[str, str]) -> bool:
    """``APIKEYS_REDIS_CLUSTER``: true when ``REDIS_URL`` names a node of a Redis Cluster."""
    text = env.get(CLUSTER_SETTING, "false").strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{CLUSTER_SETTING} must be true or false, got {text!r}")


def cluster_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A cluster's ``REDIS_URL`` may name several nodes, comma-separated
    (``redis://[user:password@]host1:port1,host2:port2/0``), so that a process started while
    one of them is down still finds the cluster. Returns the URL of the first node alone and
    every node's address."""
    parts = urlsplit(url)
    auth, at, hosts = parts.netloc.rpartition("@")
    nodes = []
    for address in hosts.split(","):
        host, colon, port = address.strip().rpartition(":")
        nodes.append((host, int(port)) if colon else (address.strip(), 6379))
    first = f"{auth}{at}{nodes[0][0]}:{nodes[0][1]}"
    return urlunsplit(parts._replace(netloc=first)), nodes


def same_slot_key(key: str, suffix: str) -> str:
    """A key that a Redis Cluster keeps in ``key``'s hash slot (so one script may touch
    both): ``key``'s own hash tag if it has one, else ``key`` as the tag."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    if start >= 0 and end > start + 1:
        return f"{key}{suffix}"
    return f"{{{key}}}{suffix}"
