"""The whole product as `python -m services.cli run` starts it, for the idle-CPU and soak
benchmarks: embedded Redis, keys service (with its relay child), projection service, on a
temporary var directory and free ports, in a process group of its own."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from services.local.embedded_redis import free_port

ROOT = Path(__file__).resolve().parent.parent
SERVICE_ROLES = ("keys", "relay", "resource-tracker", "projections")  # without Redis, supervisor


def role_of(process: psutil.Process, keys_pid: int | None) -> str:
    """A readable role for a process of the product's tree."""
    try:
        cmdline = " ".join(process.cmdline())
        name = process.name()
    except psutil.Error:
        return f"gone-{process.pid}"
    if "redis-server" in name or "redis-server" in cmdline:
        return "redis"
    if "services.keys" in cmdline:
        return "keys"
    if "services.projections" in cmdline:
        return "projections"
    if "resource_tracker" in cmdline:
        return "resource-tracker"
    if "spawn_main" in cmdline and process.ppid() == keys_pid:
        return "relay"
    return f"other-{process.pid}"


class Product:
    """`python -m services.cli run` with its own var directory, Redis port and HTTP ports."""

    def __init__(self, extra_env: dict[str, str] | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix="apikeys-product-"))
        self.redis_port = free_port()
        self.http = f"127.0.0.1:{free_port()}"
        self.keys_health = f"127.0.0.1:{free_port()}"
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith("APIKEYS_") and k != "REDIS_URL"
        }
        self.env = {
            **inherited,
            "APIKEYS_VAR_DIR": str(self.tmp / "var"),
            "APIKEYS_EMBEDDED_REDIS_PORT": str(self.redis_port),
            "APIKEYS_HTTP_ADDR": self.http,
            "APIKEYS_KEYS_HEALTH_ADDR": self.keys_health,
            "APIKEYS_ADMIN_ADDR": f"127.0.0.1:{free_port()}",
            **(extra_env or {}),
        }
        self.log = self.tmp / "run.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.known: dict[int, psutil.Process] = {}  # every process of the tree ever seen

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start(self, timeout: float = 120.0) -> Product:
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> Product:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "run"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while "ready:" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"`services.cli run` did not get ready:\n{self.output()[-3000:]}"
                )
            time.sleep(0.1)
        self.tree()
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tree(self) -> dict[str, psutil.Process]:
        """The product's processes by role: supervisor, redis, keys, relay, projections, ..."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        children = root.children(recursive=True)
        keys = next((p.pid for p in children if role_of(p, None) == "keys"), None)
        roles = {"supervisor": root} | {role_of(p, keys): p for p in children}
        for process in roles.values():
            self.known.setdefault(process.pid, process)
        return roles

    def projection_position(self) -> int:
        with urllib.request.urlopen(f"http://{self.http}/health", timeout=5) as answer:  # noqa: S310
            return int(json.loads(answer.read())["position"])

    def stop(self) -> None:
        """Ctrl-C to the process group (the supervisor stops its children and Redis), then kill
        whatever of the tree is left, the embedded Redis (a session of its own) included."""
        if self.process is not None:
            with contextlib.suppress(psutil.Error, AssertionError):
                self.tree()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            for process in self.known.values():
                with contextlib.suppress(psutil.Error):
                    if process.is_running():  # also checks the pid was not reused
                        process.kill()
            psutil.wait_procs(list(self.known.values()), timeout=10)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Product:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def wait_results(client: Any, stream: str, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while client.xlen(stream) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{stream} did not reach {count} entries")
        time.sleep(0.01)


def last_position(client: Any, stream: str) -> int:
    """The highest `position` among the latest results."""
    positions = [
        json.loads(fields[b"__data__"]).get("position") or 0
        for _, fields in client.xrevrange(stream, count=500)
    ]
    return max(positions, default=0)


def wait_projection(product: Product, position: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while product.projection_position() < position:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the projection did not reach position {position}")
        time.sleep(0.02)
