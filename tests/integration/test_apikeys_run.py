"""`apikeys run`: everything on this machine with an embedded Redis, driven like the README."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import redis

from contracts.tokens import new_token, token_hint, token_sha256
from services.local.embedded_redis import free_port
from tests.integration.keys_process import wait_until


def http_json(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_run_starts_every_part_and_the_readme_example_works(tmp_path: Path) -> None:
    redis_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        {
            "APIKEYS_VAR_DIR": str(tmp_path / "var"),
            "APIKEYS_EMBEDDED_REDIS_PORT": str(redis_port),
            "APIKEYS_HTTP_ADDR": f"127.0.0.1:{http_port}",
            "APIKEYS_KEYS_HEALTH_ADDR": f"127.0.0.1:{free_port()}",
            "APIKEYS_ADMIN_ADDR": f"127.0.0.1:{free_port()}",
        }
    )
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115
    run = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: b"ready:" in (tmp_path / "run.log").read_bytes(), timeout=60)
        assert http_json(f"http://127.0.0.1:{http_port}/health")[0] == 200
        token = new_token()
        client = redis.Redis(port=redis_port)
        commands = [
            {"type": "EnableApiModule", "command_id": "c1", "organization_id": "acme"},
            {
                "type": "GrantApiAdministrator",
                "command_id": "c2",
                "organization_id": "acme",
                "user_id": "alice",
            },
            {
                "type": "DefineLocation",
                "command_id": "c3",
                "organization_id": "acme",
                "location_id": "plant-7",
                "name": "Plant 7",
                "parent_id": None,
            },
            {
                "type": "DefineRole",
                "command_id": "c4",
                "organization_id": "acme",
                "role_id": "exporter",
                "name": "Exporter",
                "permissions": [{"permission": "view_private", "scope": "location_and_below"}],
            },
            {
                "type": "CreateApiKey",
                "command_id": "c5",
                "organization_id": "acme",
                "actor_id": "alice",
                "key_id": "key-1",
                "name": "Nightly export",
                "location_ids": ["plant-7"],
                "role_ids": ["exporter"],
                "secret_sha256": token_sha256(token),
                "secret_hint": token_hint(token),
            },
        ]
        for command in commands:
            client.xadd("apikeys.commands", {"__data__": json.dumps(command)})
        wait_until(lambda: client.xlen("apikeys.results") >= 5, timeout=20)
        results = [json.loads(f[b"__data__"]) for _, f in client.xrange("apikeys.results")]
        created = results[-1]
        assert created["status"] == "accepted" and created["key_id"] == "key-1"
        wait_until(lambda: client.xlen("apikeys.events") >= 5, timeout=20)
        events = [json.loads(f[b"__data__"]) for _, f in client.xrange("apikeys.events")]
        assert events[-1]["type"] == "ApiKeyCreated"
        assert token not in json.dumps(events) and token not in (tmp_path / "run.log").read_text()

        base = f"http://127.0.0.1:{http_port}"
        status, check = http_json(
            f"{base}/v1/check?key_id=key-1&permission=view_private&location_id=plant-7"
            f"&min_position={created['position']}"
        )
        assert status == 200 and check["allowed"] is True
        status, verified = http_json(f"{base}/v1/verify", {"token": token})
        assert status == 200 and verified["code"] == "VALID" and verified["key_id"] == "key-1"
    finally:
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=30) == 0
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=redis_port, socket_connect_timeout=1).ping()
