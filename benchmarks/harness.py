"""Shared benchmark plumbing: a private Redis, the services as processes, a mixed workload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis

from services.local.embedded_redis import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent


def mixed_workload(count: int, org: str = "bench", keys: int = 2000) -> list[dict[str, Any]]:
    """Directory set-up, then key creation and a mix of key commands, `count` in all."""
    sys.path.insert(0, str(ROOT))
    from tests.support.scenario import create_key, key_command, organization_setup

    commands = organization_setup(org, locations=10, roles=4)
    keys = min(keys, max(1, count // 5))
    for k in range(keys):
        commands.append(create_key(org, f"k{k}", locations=("L1", "L2", "L3"), roles=("R0", "R1")))
    kinds = ["ToggleRoleLocation", "RenameApiKey", "AddKeyRole", "RemoveKeyRole", "Disable"]
    i = 0
    while len(commands) < count:
        key_id = f"k{i % keys}"
        kind = kinds[(i // keys) % len(kinds)]
        if kind == "ToggleRoleLocation":
            commands.append(key_command(kind, org, key_id, role_id="R0", location_id="L2"))
        elif kind == "RenameApiKey":
            commands.append(key_command(kind, org, key_id, name=f"renamed {i}"))
        elif kind == "AddKeyRole" or kind == "RemoveKeyRole":
            commands.append(key_command(kind, org, key_id, role_id="R2"))
        else:
            commands.append(key_command("DisableApiKey", org, key_id))
        i += 1
    return commands[:count]


def encode(commands: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(c).encode() for c in commands]


def fresh_postgres_schema(url: str) -> tuple[str, Any]:
    """A schema of its own for one run; returns the store URL and a function that drops it."""
    import uuid

    import psycopg

    base = url.split("?", 1)[0]
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    return f"{base}?schema={schema}", drop


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not healthy")


class Stack:
    """A private Redis and a keys service process on a fresh store."""

    def __init__(self, event_store: str | None = None, extra_env: dict[str, str] | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix="apikeys-bench-"))
        self.redis_server = EmbeddedRedis(self.tmp / "redis", append_only=False).start()
        self.redis = redis.Redis.from_url(self.redis_server.url)
        self.health = f"127.0.0.1:{free_port()}"
        self.env = {
            **os.environ,
            "REDIS_URL": self.redis_server.url,
            "APIKEYS_EVENT_STORE": event_store or f"sqlite:///{self.tmp / 'events.db'}",
            "APIKEYS_KEYS_HEALTH_ADDR": self.health,
            "APIKEYS_CONSUMER_NAME": "bench",
            **(extra_env or {}),
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.http = f"127.0.0.1:{free_port()}"
        self.env.setdefault("APIKEYS_VIEW_STORE", f"sqlite:///{self.tmp / 'views.db'}")
        self.env["APIKEYS_HTTP_ADDR"] = self.http

    def start_keys(self) -> None:
        log = open(self.tmp / "keys.log", "wb")  # noqa: SIM115
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "services.keys"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        )
        wait_http(f"http://{self.health}/health")

    def start_projections(self) -> None:
        log = open(self.tmp / "projections.log", "wb")  # noqa: SIM115
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "services.projections"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        )
        wait_http(f"http://{self.http}/health")

    def start_module(self, module: str, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        log = open(self.tmp / f"{Path(module).stem}{'-'.join(('', *args))}.log", "wb")  # noqa: SIM115
        self.processes.append(
            subprocess.Popen(
                [sys.executable, module, *args],
                env={**self.env, **env},
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        )

    def projection_position(self) -> int:
        with urllib.request.urlopen(f"http://{self.http}/health", timeout=2) as response:  # noqa: S310
            return int(json.loads(response.read())["position"])

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.redis_server.stop()


def xadd_all(client: redis.Redis, stream: str, payloads: list[bytes], chunk: int = 1000) -> None:
    for start in range(0, len(payloads), chunk):
        pipe = client.pipeline(transaction=False)
        for payload in payloads[start : start + chunk]:
            pipe.xadd(stream, {"__data__": payload})
        pipe.execute()


def wait_len(client: redis.Redis, stream: str, count: int, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.xlen(stream) >= count:
            return time.perf_counter()
        time.sleep(0.002)
    raise RuntimeError(f"{stream} did not reach {count} entries")


def raw_round_trips(client: redis.Redis, payloads: list[bytes], batch: int = 500) -> float:
    """Baseline: the same stream work with no domain at all (XADD all, then XREADGROUP in
    batches, XADD one reply each and XACK per batch). Returns messages per second."""
    stream, replies, group = "baseline.in", "baseline.out", "baseline"
    client.delete(stream, replies)
    client.xgroup_create(stream, group, id="0", mkstream=True)
    started = time.perf_counter()
    xadd_all(client, stream, payloads)
    done = 0
    while done < len(payloads):
        reply = client.xreadgroup(group, "c", {stream: ">"}, count=batch)
        entries = reply[0][1]
        pipe = client.pipeline(transaction=False)
        for _entry_id, _ in entries:
            pipe.xadd(replies, {"__data__": b'{"status":"accepted"}'})
        pipe.xack(stream, group, *[entry_id for entry_id, _ in entries])
        pipe.execute()
        done += len(entries)
    return len(payloads) / (time.perf_counter() - started)
