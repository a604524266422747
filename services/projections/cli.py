"""The projection service's subcommands of ``apikeys``: the audit commands and
``verify-projections``, all reading the view store directly."""

from __future__ import annotations

import argparse
from typing import Any

from services.projections.audit import cli as audit_cli
from services.projections.feed.verify import verify_projections
from services.projections.runtime.settings import Settings


def _verify(_: argparse.Namespace) -> int:
    return verify_projections(Settings.from_env())


def add_commands(sub: Any) -> None:
    audit_cli.add_commands(sub)
    sub.add_parser(
        "verify-projections", help="rebuild in a scratch store and compare with the live one"
    ).set_defaults(func=_verify)
