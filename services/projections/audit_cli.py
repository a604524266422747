"""The audit subcommands of ``apikeys``: they read the view store directly, no HTTP needed."""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from services.projections import audit_queries
from services.projections.answers import permissions_answer
from services.projections.settings import Settings
from services.projections.views import SqlViewStore, open_store

_encoder = msgspec.json.Encoder()
TABLES = {
    "organizations": "SELECT organization_id, state FROM {p}organizations",
    "keys": "SELECT key_id, organization_id, state FROM {p}keys",
    "secrets": "SELECT sha256, key_id, kind, valid_until FROM {p}secrets",
    "event_log": "SELECT position, organization_id, key_id, type, occurred_at, event"
    " FROM {p}event_log",
}


def moment(text: str) -> datetime:
    """An RFC 3339 instant; one without an offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _store() -> SqlViewStore:
    settings = Settings.from_env()
    return open_store(settings.view_store, settings.view_table_prefix)


def _print_json(value: Any) -> None:
    sys.stdout.write(_encoder.encode(value).decode() + "\n")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _encoder.encode(value).decode()


def _changes_text(changes: dict[str, Any]) -> str:
    parts = []
    for name, value in changes.items():
        if isinstance(value, dict) and set(value) == {"from", "to"}:
            value = f"{_text(value['from'])} -> {_text(value['to'])}"
        elif not isinstance(value, str):
            value = _text(value)
        parts.append(f"{name}={value}")
    return ", ".join(parts)


def history(args: argparse.Namespace) -> int:
    store = _store()
    try:
        answer = audit_queries.history(
            store, args.key_id, args.after_position, args.limit, store.position()
        )
    finally:
        store.close()
    if args.json:
        _print_json(answer)
        return 0
    print(f"{'position':>9}  {'time':<27} {'actor':<14} {'command':<20} {'type':<20} changes")
    for entry in answer.entries:
        print(
            f"{entry.position:>9}  {entry.occurred_at.isoformat():<27} {entry.actor_id or '-':<14}"
            f" {entry.command_id or '-':<20} {entry.type:<20} {_changes_text(entry.changes)}"
        )
    if answer.next_after_position is not None:
        print(f"more: --after-position {answer.next_after_position}")
    return 0


def permissions(args: argparse.Namespace) -> int:
    store = _store()
    try:
        if args.as_of is not None:
            answer = audit_queries.permissions_as_of(store, args.key_id, args.as_of)
        else:
            answer = permissions_answer(store.load(), args.key_id, datetime.now(UTC))
    finally:
        store.close()
    if args.json:
        _print_json(answer)
        return 0
    print(f"key {answer.key_id}: {answer.status} (position {answer.position})")
    for location in answer.locations:
        for perm in location.permissions:
            roles = ", ".join(sorted({r.role_id for r in perm.reasons}))
            scopes = ", ".join(perm.scopes)
            print(f"  {location.location_id:<20} {perm.permission:<24} {scopes:<30} {roles}")
    return 0


def diff(args: argparse.Namespace) -> int:
    store = _store()
    try:
        answer = audit_queries.diff(store, args.key_id, args.from_moment, args.to_moment)
    finally:
        store.close()
    if args.json:
        _print_json(answer)
        return 0
    print(
        f"key {answer.key_id}: {answer.from_status} (position {answer.from_position})"
        f" -> {answer.to_status} (position {answer.to_position})"
    )
    for sign, changes in (("+", answer.gained), ("-", answer.lost)):
        for change in changes:
            print(f"{sign} {change.permission:<24} {change.location_id:<20} {change.scope}")
    return 0


def read_tables(store: SqlViewStore) -> dict[str, dict[str, Any]]:
    """Every row of the read model, by table and id, states decoded (key order is not compared)."""
    tables: dict[str, dict[str, Any]] = {"position": {"position": store.position()}}
    for table, sql in TABLES.items():
        rows = {}
        for row in store.query(sql):
            values = [
                msgspec.json.decode(v) if isinstance(v, str) and v[:1] == "{" else v
                for v in row[1:]
            ]
            rows[str(row[0])] = values
        tables[table] = rows
    return tables


def differences(live: dict[str, dict[str, Any]], rebuilt: dict[str, dict[str, Any]]) -> list[str]:
    found = []
    for table in live:
        ids = sorted(set(live[table]) | set(rebuilt[table]))
        for row_id in ids:
            mine, theirs = live[table].get(row_id), rebuilt[table].get(row_id)
            if mine != theirs:
                what = "missing" if mine is None else "extra" if theirs is None else "differs"
                found.append(f"{table} {row_id}: {what} (live {mine!r}, rebuilt {theirs!r})")
    return found


def verify_projections(_: argparse.Namespace) -> int:
    from services.projections.main import rebuild_into

    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="apikeys-verify-") as scratch:
        rebuilt_store = open_store(f"sqlite:///{Path(scratch) / 'views.db'}")
        live_store = open_store(settings.view_store, settings.view_table_prefix)
        try:
            applied = rebuild_into(rebuilt_store, settings)
            found = differences(read_tables(live_store), read_tables(rebuilt_store))
        finally:
            rebuilt_store.close()
            live_store.close()
    for line in found[:100]:
        print(line)
    if found:
        print(f"{len(found)} differences between the live read model and a rebuild")
        return 1
    print(f"the live read model equals a rebuild from the events stream ({applied} events)")
    return 0


def add_commands(sub: Any) -> None:
    history_parser = sub.add_parser("history", help="a key's events, what each changed")
    history_parser.add_argument("key_id")
    history_parser.add_argument("--json", action="store_true")
    history_parser.add_argument("--after-position", type=int, default=0)
    history_parser.add_argument("--limit", type=int, default=100)
    history_parser.set_defaults(func=history)
    perms = sub.add_parser("permissions", help="a key's effective permissions, now or as of")
    perms.add_argument("key_id")
    perms.add_argument("--as-of", type=moment, default=None)
    perms.add_argument("--json", action="store_true")
    perms.set_defaults(func=permissions)
    diff_parser = sub.add_parser("diff", help="permissions gained and lost between two times")
    diff_parser.add_argument("key_id")
    diff_parser.add_argument("--from", dest="from_moment", type=moment, required=True)
    diff_parser.add_argument("--to", dest="to_moment", type=moment, required=True)
    diff_parser.add_argument("--json", action="store_true")
    diff_parser.set_defaults(func=diff)
    sub.add_parser(
        "verify-projections", help="rebuild in a scratch store and compare with the live one"
    ).set_defaults(func=verify_projections)
