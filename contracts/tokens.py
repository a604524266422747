"""API tokens: ``<prefix>_<random><checksum>``; the service only ever sees their SHA-256.

The random part is 32 base62 characters (about 190 bits); the checksum is 6 base62 characters
of the CRC32 of prefix and random part, so a mistyped token is caught without a lookup.
"""

import hashlib
import secrets
import zlib

PREFIX = "apk"
# the tokens callers of the query API present (``apikeys new-caller``): another prefix, so a
# key's token and a caller's are never mistaken for each other
CALLER_PREFIX = "apc"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LEN = 32
_CHECKSUM_LEN = 6


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        chars.append(_ALPHABET[rest])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_LEN)


def new_token(prefix: str = PREFIX) -> str:
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LEN))
    body = f"{prefix}_{random_part}"
    return body + _checksum(body)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_hint(token: str) -> str:
    """A short display hint: the prefix and the last four characters."""
    prefix = token.split("_", 1)[0]
    return f"{prefix}_...{token[-4:]}"


def has_prefix(token: str, prefix: str = PREFIX) -> bool:
    return token.startswith(prefix + "_")


def checksum_ok(token: str) -> bool:
    if len(token) <= _CHECKSUM_LEN or "_" not in token:
        return False
    body, check = token[:-_CHECKSUM_LEN], token[-_CHECKSUM_LEN:]
    return all(c in _ALPHABET for c in check) and _checksum(body) == check
