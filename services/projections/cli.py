"""The projection service's subcommands of ``apikeys``: the audit commands and
``verify-projections``, all reading the view store directly."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from services.projections.audit import cli as audit_cli
from services.projections.feed.catchup import CatchUpFailed
from services.projections.feed.verify import verify_projections
from services.projections.runtime.settings import Settings


def add_history_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="source",
        metavar="FILE",
        help="first the events of FILE (JSON lines, as `apikeys export` writes them; "
        "- for standard input), then the events stream",
    )


@contextlib.contextmanager
def history_source(name: str | None) -> Iterator[TextIO | None]:
    """The file named by ``--from`` (standard input for ``-``), open while in use."""
    if name is None:
        yield None
    elif name == "-":
        yield sys.stdin
    else:
        with open(name, encoding="utf-8") as source:
            yield source


def _verify(args: argparse.Namespace) -> int:
    try:
        with history_source(args.source) as source:
            return verify_projections(Settings.from_env(), source)
    except (CatchUpFailed, ValueError, OSError) as error:
        print(f"verify-projections: {error}", file=sys.stderr)
        return 1


def add_commands(sub: Any) -> None:
    audit_cli.add_commands(sub)
    verifier = sub.add_parser(
        "verify-projections", help="rebuild in a scratch store and compare with the live one"
    )
    add_history_source(verifier)
    verifier.set_defaults(func=_verify)
