"""Log lines never carry a token, a secret hash or a hint; JSON lines are JSON."""

from __future__ import annotations

import json
import logging

from contracts.tokens import new_token, token_hint, token_sha256
from services.common.logs import JsonFormatter, MaskingFormatter, mask


def test_tokens_hashes_and_hints_are_masked_and_words_are_not() -> None:
    token = new_token()
    text = mask(f"{token} {token_sha256(token)} {token_hint(token)} keys_service key-1 a.b")
    assert token not in text and token_sha256(token) not in text
    assert token_hint(token) not in text
    assert text.endswith("keys_service key-1 a.b")


def test_a_json_line_holds_the_masked_message() -> None:
    token = new_token()
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "got %s", (token,), None)
    line = json.loads(MaskingFormatter(JsonFormatter()).format(record))
    assert line["level"] == "WARNING" and line["logger"] == "x"
    assert line["message"] == "got [redacted]"
