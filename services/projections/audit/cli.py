"""The audit subcommands of ``apikeys`` (history, permissions, diff): they read the view store
directly, no HTTP needed."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from contracts.codec import json_encoder
from services.projections.audit import queries as audit_queries
from services.projections.model.answers import permissions_answer
from services.projections.runtime.settings import Settings
from services.projections.store import open_store
from services.projections.store.sql import SqlViewStore


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
    sys.stdout.write(json_encoder.encode(value).decode() + "\n")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json_encoder.encode(value).decode()


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
            answer = audit_queries.permissions_as_of(store, args.key_id, args.as_of, limit=None)
        else:  # the whole listing: this process serves nobody else
            answer = permissions_answer(
                store.load(), args.key_id, datetime.now(UTC), None, None, None
            )
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
