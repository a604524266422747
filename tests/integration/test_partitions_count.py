"""The number of partitions is agreed in Redis: a keys service configured with another number
refuses to start, saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from services.local.embedded_redis import free_port


def test_a_keys_service_with_another_number_of_partitions_refuses_to_start(
    redis_url: str, unique: str, tmp_path: Path
) -> None:
    key = f"{unique}.partitions"
    client = redis.Redis.from_url(redis_url)
    client.set(key, 4)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("APIKEYS_", "REDIS_URL"))},
        "REDIS_URL": redis_url,
        "APIKEYS_EVENT_STORE": f"sqlite:///{tmp_path / 'events.db'}",
        "APIKEYS_COMMANDS_STREAM": f"{unique}.commands",
        "APIKEYS_EVENTS_STREAM": f"{unique}.events",
        "APIKEYS_KEYS_HEALTH_ADDR": f"127.0.0.1:{free_port()}",
        "APIKEYS_PARTITIONS": "2",
        "APIKEYS_PARTITIONS_KEY": key,
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.keys"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert f"Redis key {key} says the commands are in 4 partition(s)" in done.stderr
    assert "APIKEYS_PARTITIONS=2; refusing to start" in done.stderr
    assert client.get(key) == b"4"
    assert not client.exists(f"{unique}.commands.0")  # nothing was read or created
    client.close()
