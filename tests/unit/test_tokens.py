import hashlib
import math

import pytest

from contracts.tokens import checksum_ok, has_prefix, new_token, token_hint, token_sha256


def test_a_new_token_has_prefix_enough_randomness_and_a_valid_checksum() -> None:
    token = new_token()
    prefix, rest = token.split("_", 1)
    assert prefix == "apk" and has_prefix(token)
    random_part = rest[:-6]
    assert len(random_part) * math.log2(62) >= 160
    assert checksum_ok(token)


def test_tokens_are_unique() -> None:
    assert len({new_token() for _ in range(1000)}) == 1000


@pytest.mark.parametrize("position", [4, 10, 20, 37, -1])
def test_a_changed_character_fails_the_checksum(position: int) -> None:
    token = new_token()
    changed = token[position]
    replacement = "A" if changed != "A" else "B"
    typo = token[:position] + replacement + (token[position + 1 :] if position != -1 else "")
    assert not checksum_ok(typo)


@pytest.mark.parametrize("text", ["", "apk_", "apk_short", "no-underscore-here", "apk_" + "!" * 40])
def test_malformed_text_fails_the_checksum(text: str) -> None:
    assert not checksum_ok(text)


def test_the_service_side_sees_only_the_sha256_and_a_hint() -> None:
    token = new_token()
    assert token_sha256(token) == hashlib.sha256(token.encode()).hexdigest()
    hint = token_hint(token)
    assert hint.startswith("apk_...") and hint.endswith(token[-4:])
    assert token[4:-4] not in hint
