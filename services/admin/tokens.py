"""Tokens are made here, shown once and forgotten: only their hash and hint are sent."""

from __future__ import annotations

from typing import NamedTuple

from contracts.tokens import new_token, token_hint, token_sha256


class NewSecret(NamedTuple):
    token: str
    sha256: str
    hint: str


def new_secret() -> NewSecret:
    token = new_token()
    return NewSecret(token, token_sha256(token), token_hint(token))
