"""`apikeys redis-cli` passes every argument through to the bundled redis-cli untouched."""

from __future__ import annotations

import os
import subprocess
import sys

from services.local.embedded_redis import EmbeddedRedis


def apikeys(*arguments: str, redis_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APIKEYS_", "REDIS_URL"))}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "redis-cli", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_options_of_redis_cli_pass_through(redis_server: EmbeddedRedis) -> None:
    done = apikeys("-p", str(redis_server.port), "PING")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "PONG"


def test_without_where_options_it_uses_redis_url(redis_server: EmbeddedRedis) -> None:
    done = apikeys("--no-raw", "ECHO", "-p", redis_url=redis_server.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '"-p"'
