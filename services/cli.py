"""The `apikeys` command: run the product locally, run one service, make tokens."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from contracts.tokens import new_token, token_hint, token_sha256
from services.common.redact import redacted
from services.embedded_redis import EmbeddedRedis, redis_cli_binary
from services.projections.cli import add_commands as add_audit_commands
from services.supervisor import Child, Supervisor, spawn

DEFAULT_EMBEDDED_REDIS_PORT = 6380


def wait_for_health(url: str, child: Child, supervisor: Supervisor, notice: float = 30.0) -> None:
    """Wait for ``url`` to answer 200 (``/health``: the process is up, not that every
    dependency is), restarting the child meanwhile if it exits; say so every ``notice`` s."""
    next_notice = time.monotonic() + notice
    while not supervisor.stopping:
        if not supervisor.look_after(child):
            raise SystemExit(f"{child.name} keeps failing before {url} answers")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
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
    wait_for_health(f"http://{http_addr}/health", projections, supervisor)
    if not supervisor.stopping:
        print(f"projections  view store {redacted(env['APIKEYS_VIEW_STORE'])}", flush=True)
        print(f"ready: queries and GET /health on http://{http_addr} (Ctrl-C stops)", flush=True)


def _started(redis: EmbeddedRedis) -> subprocess.Popen[bytes]:
    redis.start()
    assert redis.process is not None
    return redis.process


def serve_keys(_: argparse.Namespace) -> int:
    from services.keys.main import serve

    serve()
    return 0


def serve_projections(_: argparse.Namespace) -> int:
    from services.projections.main import serve
    from services.projections.runtime.settings import Settings

    serve(Settings.from_env())
    return 0


def rebuild_projections(_: argparse.Namespace) -> int:
    from services.projections.feed.rebuild import rebuild
    from services.projections.runtime.settings import Settings

    applied = rebuild(Settings.from_env())
    print(f"rebuilt the read model from history: {applied} events applied")
    return 0


def export(args: argparse.Namespace) -> int:
    """The full event history as JSON lines on stdout, progress on stderr."""
    from services.keys.settings import KeysSettings
    from services.keys.streams.export import export_events

    written = export_events(
        KeysSettings.from_env().event_store,
        sys.stdout,
        since=args.since,
        organization_id=args.organization,
        progress=sys.stderr if sys.stderr.isatty() or args.progress else None,
    )
    print(f"{written} events exported", file=sys.stderr)
    return 0


def new_token_command(args: argparse.Namespace) -> int:
    token = new_token(args.prefix)
    if args.shell:
        print(
            f"TOKEN={token}\nSECRET_SHA256={token_sha256(token)}\nSECRET_HINT={token_hint(token)}"
        )
        return 0
    print(f"token          {token}")
    print(f"secret_sha256  {token_sha256(token)}")
    print(f"secret_hint    {token_hint(token)}")
    print("Keep the token; only its SHA-256 and hint go into CreateApiKey or RotateKeySecret.")
    return 0


def embedded_redis_url() -> str:
    port = os.environ.get("APIKEYS_EMBEDDED_REDIS_PORT", DEFAULT_EMBEDDED_REDIS_PORT)
    return f"redis://127.0.0.1:{port}/0"


# Tools run beside `apikeys run`: without REDIS_URL they use its embedded Redis.
LOCAL_TOOLS = {"redis-cli", "rebuild-projections", "verify-projections"}


def redis_cli(args: argparse.Namespace) -> int:
    """The redis-cli bundled with the embedded server, pointed at REDIS_URL."""
    url = os.environ["REDIS_URL"]
    return subprocess.call([str(redis_cli_binary()), "-u", url, *args.arguments])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="apikeys", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run every part locally").set_defaults(func=run)
    sub.add_parser("serve-keys", help="run the keys service alone").set_defaults(func=serve_keys)
    sub.add_parser("serve-projections", help="run the projection service alone").set_defaults(
        func=serve_projections
    )
    sub.add_parser("rebuild-projections", help="rebuild the read model from history").set_defaults(
        func=rebuild_projections
    )
    exporter = sub.add_parser("export", help="the event history as JSON lines")
    exporter.add_argument("--since", type=int, default=0, help="only events after this position")
    exporter.add_argument("--organization", help="only this organization's events")
    exporter.add_argument("--progress", action="store_true", help="show progress on stderr")
    exporter.set_defaults(func=export)
    token = sub.add_parser("new-token", help="make a token and its SHA-256")
    token.add_argument("--prefix", default="apk")
    token.add_argument("--shell", action="store_true", help="print NAME=value lines for eval")
    token.set_defaults(func=new_token_command)
    add_audit_commands(sub)
    cli = sub.add_parser("redis-cli", help="the bundled redis-cli, against REDIS_URL")
    cli.add_argument("arguments", nargs=argparse.REMAINDER)
    cli.set_defaults(func=redis_cli)
    args = parser.parse_args(argv)
    if args.command in LOCAL_TOOLS:
        os.environ.setdefault("REDIS_URL", embedded_redis_url())
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
