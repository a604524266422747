"""The `apikeys` command: run the product locally, run one service, make tokens."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from contracts.callers import CALLER_SCOPES, CallerEntry
from contracts.codec import json_encoder
from contracts.tokens import CALLER_PREFIX, new_token, token_hint, token_sha256
from services.bulk_import.main import add_command as add_import_command
from services.local.embedded_redis import redis_cli_binary
from services.local.run import embedded_redis_url, run
from services.projections.cli import add_commands as add_audit_commands
from services.projections.cli import add_history_source


def serve_keys(_: argparse.Namespace) -> int:
    from services.keys.main import serve

    serve()
    return 0


def serve_projections(_: argparse.Namespace) -> int:
    from services.projections.main import serve
    from services.projections.runtime.settings import Settings

    serve(Settings.from_env())
    return 0


def serve_admin(_: argparse.Namespace) -> int:
    from services.admin.main import serve

    serve()
    return 0


def rebuild_projections(args: argparse.Namespace) -> int:
    from services.projections.cli import history_source
    from services.projections.feed.catchup import CatchUpFailed
    from services.projections.feed.rebuild import rebuild
    from services.projections.runtime.settings import Settings

    try:
        with history_source(args.source) as source:
            applied = rebuild(Settings.from_env(), source)
    except (CatchUpFailed, ValueError, OSError) as error:
        print(f"rebuild-projections: {error}", file=sys.stderr)
        return 1
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


def dead_letters(args: argparse.Namespace) -> int:
    """List dead letters as JSON lines, or retry or drop them by id."""
    import asyncio

    from services.keys.settings import KeysSettings
    from services.keys.streams.dead_letters import run_command

    if args.action != "list" and not args.ids:
        print(f"apikeys dead-letters {args.action}: give one or more ids", file=sys.stderr)
        return 2
    settings = KeysSettings.from_env()
    return asyncio.run(
        run_command(settings, args.action, args.ids, args.count, sys.stdout, sys.stderr)
    )


def asyncapi_command(_: argparse.Namespace) -> int:
    from contracts.documents import asyncapi, render

    sys.stdout.write(render(asyncapi()))
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


def new_caller_command(args: argparse.Namespace) -> int:
    """A caller token for the query API and the callers-file entry holding only its hash."""
    import msgspec

    token = new_token(CALLER_PREFIX)
    fields = {
        "name": args.name,
        "secret_sha256": token_sha256(token),
        "scopes": sorted(set(args.scope)),
        "organizations": list(dict.fromkeys(args.organization)),
    }
    try:
        entry = msgspec.convert(fields, CallerEntry)
    except msgspec.ValidationError as error:
        print(f"apikeys new-caller: {error}", file=sys.stderr)
        return 2
    print(f"token  {token}")
    print(
        "Give the token to the caller (it sends Authorization: Bearer <token>); it is shown "
        "only now.\nAdd this object to the list in APIKEYS_CALLERS_FILE:"
    )
    print(json_encoder.encode(entry).decode())
    return 0


# Tools run beside `apikeys run`: without REDIS_URL they use its embedded Redis.
LOCAL_TOOLS = {"rebuild-projections", "verify-projections", "dead-letters", "import"}


# redis-cli options that say where to connect (given any, REDIS_URL is not added), and the
# options that take a value (to find where the options end and the Redis command begins)
_WHERE = {"-h", "-p", "-u", "-s"}
_WITH_VALUE = _WHERE | {"-a", "-r", "-i", "-n", "-d", "-D", "--user", "--pass", "--cacert"}


def _connection_given(arguments: list[str]) -> bool:
    index = 0
    while index < len(arguments) and arguments[index].startswith("-"):
        if arguments[index] in _WHERE:
            return True
        index += 2 if arguments[index] in _WITH_VALUE else 1
    return False


def redis_cli(arguments: list[str]) -> int:
    """The redis-cli bundled with the embedded server, every argument passed through untouched;
    pointed at REDIS_URL (or the embedded Redis) unless its options say where to connect."""
    where = []
    if not _connection_given(arguments):
        where = ["-u", os.environ.get("REDIS_URL") or embedded_redis_url()]
    return subprocess.call([str(redis_cli_binary()), *where, *arguments])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="apikeys", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run", help="run every part locally")
    runner.add_argument(
        "--demo",
        action="store_true",
        help="seed the organization 'demo' and sign in to the admin page as APIKEYS_ADMIN_DEV_USER "
        "(default dev)",
    )
    runner.set_defaults(func=run)
    sub.add_parser("serve-admin", help="run the admin service alone").set_defaults(func=serve_admin)
    sub.add_parser("serve-keys", help="run the keys service alone").set_defaults(func=serve_keys)
    sub.add_parser("serve-projections", help="run the projection service alone").set_defaults(
        func=serve_projections
    )
    rebuilder = sub.add_parser("rebuild-projections", help="rebuild the read model from history")
    add_history_source(rebuilder)
    rebuilder.set_defaults(func=rebuild_projections)
    exporter = sub.add_parser("export", help="the event history as JSON lines")
    exporter.add_argument("--since", type=int, default=0, help="only events after this position")
    exporter.add_argument("--organization", help="only this organization's events")
    exporter.add_argument("--progress", action="store_true", help="show progress on stderr")
    exporter.set_defaults(func=export)
    letters = sub.add_parser("dead-letters", help="list, retry or drop dead letters")
    letters.add_argument("action", choices=("list", "retry", "drop"))
    letters.add_argument("ids", nargs="*", metavar="ID", help="dead letter ids (from list)")
    letters.add_argument("--count", type=int, default=1000, help="most dead letters listed")
    letters.set_defaults(func=dead_letters)
    token = sub.add_parser("new-token", help="make a token and its SHA-256")
    token.add_argument("--prefix", default="apk")
    token.add_argument("--shell", action="store_true", help="print NAME=value lines for eval")
    token.set_defaults(func=new_token_command)
    sub.add_parser("asyncapi", help="the AsyncAPI 3 document of every stream").set_defaults(
        func=asyncapi_command
    )
    caller = sub.add_parser("new-caller", help="make a caller token for the query API")
    caller.add_argument("--name", required=True, help="the caller's name (logs and counts)")
    caller.add_argument(
        "--scope", action="append", required=True, choices=CALLER_SCOPES, help="repeatable"
    )
    caller.add_argument(
        "--organization",
        action="append",
        required=True,
        help="an organization id it may ask about, repeatable; '*' for every organization",
    )
    caller.set_defaults(func=new_caller_command)
    add_audit_commands(sub)
    add_import_command(sub)
    # listed for --help; run before parsing, so that its arguments (-p 6380 ...) pass untouched
    sub.add_parser("redis-cli", help="the bundled redis-cli, against REDIS_URL", add_help=False)
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["redis-cli"]:
        return redis_cli(arguments[1:])
    args = parser.parse_args(arguments)
    if args.command in LOCAL_TOOLS:
        os.environ.setdefault("REDIS_URL", embedded_redis_url())
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
