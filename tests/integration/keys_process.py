"""Drive the keys service as an upstream service would: a process, XADD in, stream reads out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from services.local.embedded_redis import free_port


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


class KeysProcess:
    def __init__(self, redis_url: str, event_store: str, prefix: str, workdir: Path):
        self.health_port = free_port()
        self.streams = {
            "commands": f"{prefix}.commands",
            "results": f"{prefix}.results",
            "events": f"{prefix}.events",
            "dead": f"{prefix}.dead-letter",
            "replay_requests": f"{prefix}.replay-requests",
        }
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "APIKEYS_EVENT_STORE": event_store,
            "APIKEYS_COMMANDS_STREAM": self.streams["commands"],
            "APIKEYS_RESULTS_STREAM": self.streams["results"],
            "APIKEYS_EVENTS_STREAM": self.streams["events"],
            "APIKEYS_DEAD_LETTER_STREAM": self.streams["dead"],
            "APIKEYS_REPLAY_REQUESTS_STREAM": self.streams["replay_requests"],
            "APIKEYS_KEYS_HEALTH_ADDR": f"127.0.0.1:{self.health_port}",
            "APIKEYS_CONSUMER_NAME": "keys-test",
            "APIKEYS_RECLAIM_IDLE_MS": "1000",
        }
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.redis = redis.Redis.from_url(redis_url)

    def start(self) -> KeysProcess:
        log = open(self.workdir / "keys.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.keys"],
            env=self.env,
            stdout=log,
            stderr=log,
            cwd=self.workdir,
        )
        wait_until(self._healthy, timeout=30)
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"keys service exited: {(self.workdir / 'keys.log').read_text()}")
        try:
            url = f"http://127.0.0.1:{self.health_port}/health"
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def send(self, *commands: dict[str, Any]) -> list[str]:
        pipe = self.redis.pipeline(transaction=False)
        for command in commands:
            pipe.xadd(self.streams["commands"], {"__data__": json.dumps(command)})
        return [i.decode() for i in pipe.execute()]

    def send_raw(self, data: bytes | str) -> str:
        return self.redis.xadd(self.streams["commands"], {"__data__": data}).decode()

    def read(self, stream: str) -> list[tuple[str, dict[str, Any]]]:
        entries = self.redis.xrange(self.streams[stream])
        return [(i.decode(), json.loads(f[b"__data__"])) for i, f in entries]

    def results(self) -> list[dict[str, Any]]:
        return [body for _, body in self.read("results")]

    def wait_for_results(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        wait_until(lambda: self.redis.xlen(self.streams["results"]) >= count, timeout)
        return self.results()

    def wait_for_events_up_to(self, position: int, timeout: float = 30.0) -> None:
        def reached() -> bool:
            last = self.redis.xrevrange(self.streams["events"], count=1)
            return bool(last) and int(last[0][0].split(b"-")[0]) >= position

        wait_until(reached, timeout)
