"""`apikeys run`: every part on this machine in the foreground, under one supervisor that
restarts a child that exits and stops them all on Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from services.common.redact import redacted
from services.local.embedded_redis import EmbeddedRedis
from services.local.supervisor import Child, Supervisor, spawn

DEFAULT_EMBEDDED_REDIS_PORT = 6380


def wait_for_health(url: str, child: Child, supervisor: Supervisor, notice: float = 30.0) -> None:
    """Wait for ``url`` to answer 200 (``/health``: the process is up, not that every
    dependency is), restarting the child meanwhile if it exits; say so every ``notice`` s."""
    next_notice = time.monotonic() + notice
    while not supervisor.stopping:
        if not supervisor.look_after(child):
            raise SystemExit(f"{child.name} keeps failing before {url} answers")
        try:
            # our own child: its certificate (APIKEYS_TLS_CERT) need not be trusted here
            context = ssl._create_unverified_context() if url.startswith("https:") else None
            with urllib.request.urlopen(url, timeout=1, context=context) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() >= next_notice:
            print(f"still waiting for {url}", flush=True)
            next_notice = time.monotonic() + notice
        time.sleep(0.1)


def run(_: argparse.Namespace) -> int:
    """Everything on this machine, in the foreground, until Ctrl-C or SIGTERM."""
    env = dict(os.environ)
    var = Path(env.get("APIKEYS_VAR_DIR", "var"))
    supervisor = Supervisor()
    supervisor.install_signal_handlers()
    redis = None if env.get("REDIS_URL") else _embedded_redis(env, var)
    try:
        _add_redis(supervisor, env, redis, var)
        env.setdefault("APIKEYS_EVENT_STORE", f"sqlite:///{var / 'events.db'}")
        env.setdefault("APIKEYS_VIEW_STORE", f"sqlite:///{var / 'views.db'}")
        _add_services(supervisor, env)
        return supervisor.watch()
    finally:
        supervisor.stop_all()
        if redis is not None:
            redis.stop()


def _embedded_redis(env: dict[str, str], var: Path) -> EmbeddedRedis:
    port = int(env.get("APIKEYS_EMBEDDED_REDIS_PORT", DEFAULT_EMBEDDED_REDIS_PORT))
    return EmbeddedRedis(var / "redis", port)


def _add_redis(
    supervisor: Supervisor, env: dict[str, str], redis: EmbeddedRedis | None, var: Path
) -> None:
    """The embedded Redis as a child (when REDIS_URL names none); sets REDIS_URL for the rest."""
    if redis is None:
        print(f"redis        {redacted(env['REDIS_URL'])}", flush=True)
        return
    supervisor.add(Child("redis", lambda: _started(redis), stop_last=True))
    env["REDIS_URL"] = redis.url
    print(f"redis        {redis.url} (embedded, data in {var / 'redis'}, AOF on)", flush=True)


def _add_services(supervisor: Supervisor, env: dict[str, str]) -> None:
    """The keys service, then the projection service, each once its predecessor answers."""
    http_addr = env.setdefault("APIKEYS_HTTP_ADDR", "127.0.0.1:8080")
    keys_health = env.setdefault("APIKEYS_KEYS_HEALTH_ADDR", "127.0.0.1:8081")
    keys = supervisor.add(
        Child("keys service", lambda: spawn([sys.executable, "-m", "services.keys"], env))
    )
    wait_for_health(f"http://{keys_health}/health", keys, supervisor)
    print(f"keys         event store {redacted(env['APIKEYS_EVENT_STORE'])}", flush=True)
    projections = supervisor.add(
        Child(
            "projection service",
            lambda: spawn([sys.executable, "-m", "services.projections"], env),
        )
    )
    scheme = "https" if env.get("APIKEYS_TLS_CERT") else "http"
    wait_for_health(f"{scheme}://{http_addr}/health", projections, supervisor)
    if not supervisor.stopping:
        print(f"projections  view store {redacted(env['APIKEYS_VIEW_STORE'])}", flush=True)
        print(
            f"ready: queries and GET /health on {scheme}://{http_addr} (Ctrl-C stops)", flush=True
        )


def _started(redis: EmbeddedRedis) -> subprocess.Popen[bytes]:
    redis.start()
    assert redis.process is not None
    return redis.process


def embedded_redis_url() -> str:
    port = os.environ.get("APIKEYS_EMBEDDED_REDIS_PORT", DEFAULT_EMBEDDED_REDIS_PORT)
    return f"redis://127.0.0.1:{port}/0"
