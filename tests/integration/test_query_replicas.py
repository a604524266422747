"""Query replicas: two projection processes, each following the events stream on its own into
its own store, give the same answers at the same position; ``min_position`` reads one's own
writes on either; a replica started late says ready only once it has caught up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from services.local.embedded_redis import free_port
from tests.faults.deployment import wait_healthy
from tests.faults.processes import ManagedProcess, ProcessHarness
from tests.support.scenario import create_key, key_command, organization_setup

KEYS = [f"qr-key-{n}" for n in range(12)]


@pytest.fixture
def harness(tmp_path: Path, unique: str) -> Iterator[ProcessHarness]:
    processes = ProcessHarness(tmp_path, marker=f"query-replicas-{unique}")
    try:
        yield processes
    finally:
        survivors = processes.kill_everything()
        assert not survivors, f"processes survived the test: {survivors}"


def projection(
    harness: ProcessHarness, name: str, redis_url: str, events: str, view_store: str
) -> tuple[ManagedProcess, str]:
    addr = f"127.0.0.1:{free_port()}"
    process = harness.python(
        name,
        ["services.projections"],
        harness.env(
            REDIS_URL=redis_url,
            APIKEYS_EVENTS_STREAM=events,
            APIKEYS_VIEW_STORE=view_store,
            APIKEYS_HTTP_ADDR=addr,
        ),
    )
    wait_healthy(process, f"http://{addr}/health")
    return process, f"http://{addr}"


def queries() -> list[str]:
    paths = [f"/v1/keys/{key}/permissions" for key in KEYS]
    paths += [f"/v1/check?key_id={key}&permission=perm0&location_id=L1" for key in KEYS[:4]]
    paths.append("/v1/organizations/qr-org/keys?permission=perm0&location_id=L1")
    return paths


def answers(base: str, min_position: int) -> dict[str, Any]:
    out = {}
    with httpx.Client(base_url=base, timeout=10) as http:
        for path in queries():
            sep = "&" if "?" in path else "?"
            reply = http.get(f"{path}{sep}min_position={min_position}")
            assert reply.status_code == 200, (path, reply.status_code, reply.text)
            out[path] = reply.json()
    return out


def test_two_projection_replicas_answer_alike_and_a_late_one_is_ready_only_caught_up(
    harness: ProcessHarness, redis_url: str, unique: str, tmp_path: Path
) -> None:
    streams = {
        "APIKEYS_COMMANDS_STREAM": f"{unique}.commands",
        "APIKEYS_RESULTS_STREAM": f"{unique}.results",
        "APIKEYS_EVENTS_STREAM": f"{unique}.events",
        "APIKEYS_DEAD_LETTER_STREAM": f"{unique}.dead-letter",
    }
    keys = harness.python(
        "keys",
        ["services.keys"],
        harness.env(
            REDIS_URL=redis_url,
            APIKEYS_EVENT_STORE=f"sqlite:///{tmp_path / 'events.db'}",
            APIKEYS_KEYS_HEALTH_ADDR=f"127.0.0.1:{free_port()}",
            APIKEYS_CONSUMER_NAME=f"keys-{unique}",
            APIKEYS_PARTITIONS_KEY=f"{unique}.partitions",
            **streams,
        ),
    )
    events = streams["APIKEYS_EVENTS_STREAM"]
    _, first = projection(
        harness, "projection-1", redis_url, events, f"sqlite:///{tmp_path / 'views-1.db'}"
    )
    client = redis.Redis.from_url(redis_url)
    commands = organization_setup("qr-org") + [create_key("qr-org", k) for k in KEYS]
    commands += [key_command("DisableApiKey", "qr-org", k) for k in KEYS[::3]]
    for command in commands:
        client.xadd(streams["APIKEYS_COMMANDS_STREAM"], {"__data__": json.dumps(command)})
    position = wait_for_position(client, streams["APIKEYS_RESULTS_STREAM"], len(commands), keys)
    expected = answers(first, position)

    _, late = projection(
        harness, "projection-2", redis_url, events, f"sqlite:///{tmp_path / 'views-2.db'}"
    )
    readiness = []
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=late, timeout=5) as http:
        while time.monotonic() < deadline:
            reply = http.get("/ready")
            readiness.append((reply.status_code, reply.json().get("position")))
            if reply.status_code == 200:
                break
            time.sleep(0.02)
    assert readiness[-1][0] == 200, readiness[-5:]
    early = [(code, at) for code, at in readiness if code == 200 and (at or 0) < position]
    assert not early, f"ready before caught up to {position}: {early}"
    assert answers(late, position) == expected

    rename = key_command("RenameApiKey", "qr-org", KEYS[1], name="Renamed")
    client.xadd(streams["APIKEYS_COMMANDS_STREAM"], {"__data__": json.dumps(rename)})
    newer = wait_for_position(client, streams["APIKEYS_RESULTS_STREAM"], len(commands) + 1, keys)
    assert newer > position
    mine = [answers(base, newer)[f"/v1/keys/{KEYS[1]}/permissions"] for base in (late, first)]
    assert mine[0] == mine[1] and mine[0]["position"] >= newer
    client.close()


def wait_for_position(client: redis.Redis, results: str, count: int, keys: ManagedProcess) -> int:
    """The position of the last accepted result, once ``count`` results are in."""
    deadline = time.monotonic() + 60
    while client.xlen(results) < count:
        assert time.monotonic() < deadline, (
            f"{client.xlen(results)} of {count} results: {keys.describe()}"
        )
        time.sleep(0.05)
    bodies = [json.loads(f[b"__data__"]) for _, f in client.xrange(results)]
    assert all(b["status"] == "accepted" for b in bodies), [
        b for b in bodies if b["status"] != "accepted"
    ][:3]
    return max(int(b["position"]) for b in bodies)
