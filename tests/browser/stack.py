"""The product as a person runs it for the browser tests: `apikeys run --demo` as a process
(embedded Redis, keys, projections and the admin service signed in as `dev`), plus a second
admin service behind a pretend single sign-on proxy (the user from a header, 127.0.0.1 trusted)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client import ApiKeysClient
from contracts import commands as c
from contracts.results import CommandResult
from services.local.embedded_redis import free_port


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def http(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (loopback)
            return True
    except OSError:
        return False


@dataclass
class Stack:
    tmp: Path
    redis_port: int = field(default_factory=free_port)
    http_addr: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    admin_addr: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    sso_addr: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def admin(self) -> str:
        return f"http://{self.admin_addr}"

    @property
    def sso_admin(self) -> str:
        return f"http://{self.sso_addr}"

    @property
    def projections(self) -> str:
        return f"http://{self.http_addr}"

    def env(self, **extra: str) -> dict[str, str]:
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith("APIKEYS_") and k != "REDIS_URL"
        }
        return {
            **inherited,
            "APIKEYS_VAR_DIR": str(self.tmp / "var"),
            "APIKEYS_EMBEDDED_REDIS_PORT": str(self.redis_port),
            "APIKEYS_HTTP_ADDR": self.http_addr,
            "APIKEYS_KEYS_HEALTH_ADDR": f"127.0.0.1:{free_port()}",
            "APIKEYS_ADMIN_ADDR": self.admin_addr,
            **extra,
        }

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *args],
            env=env,
            cwd=self.tmp,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)

    def start(self) -> Stack:
        self._start("run", ["run", "--demo"], self.env())
        log = self.tmp / "run.log"
        wait_for(lambda: b"admin page" in log.read_bytes(), 90, "apikeys run --demo")
        sso = self.env(
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            APIKEYS_ADMIN_ADDR=self.sso_addr,
            APIKEYS_ADMIN_TRUSTED_PROXIES="127.0.0.1",
        )
        self._start("sso-admin", ["serve-admin"], sso)
        wait_for(lambda: answers(f"{self.sso_admin}/health"), 30, "the second admin service")
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def send(self, *commands: c.Command) -> list[CommandResult]:
        """Directory commands, as the directory service would send them."""

        async def go() -> list[CommandResult]:
            redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
            async with ApiKeysClient(redis_url=redis_url) as client:
                return [await client.send(command) for command in commands]

        # Playwright's synchronous API keeps an event loop running in this thread
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, go()).result(timeout=60)

    def check(self, key_id: str, permission: str, location_id: str) -> dict[str, Any]:
        query = f"key_id={key_id}&permission={permission}&location_id={location_id}"
        return http(f"{self.projections}/v1/check?{query}")[1]

    def verify(self, token: str) -> dict[str, Any]:
        return http(f"{self.projections}/v1/verify", {"token": token})[1]
