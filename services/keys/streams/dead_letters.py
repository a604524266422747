"""What an operator does with dead letters (`apikeys dead-letters list|retry|drop`): they stay
on the dead-letter stream (at most ``APIKEYS_DEAD_LETTER_MAX_ENTRIES``) until one of these.

A retry puts the original payload back onto the commands stream as a new entry and removes
the dead letter, in one script: of two operators retrying the same letter at once, one does.
With several partitions the payload goes to its organization's partition (as any publisher
would send it); a payload naming no organization goes to the first partition, where it is
dead-lettered again.
On a Redis Cluster the two streams live in different slots, so the command is added first and
the dead letter removed after: a crash in between, or two operators at once, can add the
command twice, and the second entry is answered ``duplicate`` (same ``command_id``), never
applied twice; the dead letter is never removed without its command having been added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TextIO

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from contracts.partitions import commands_stream_for
from contracts.results import DeadLetter
from contracts.streams import DATA_FIELD
from services.common.redis_client import connect, is_cluster
from services.keys.settings import KeysSettings

_DATA_KEY = DATA_FIELD.encode()
_letter = msgspec.json.Decoder(DeadLetter)

# KEYS: dead letters, commands. ARGV: the dead letter's id, its payload. Returns the new
# command entry's id, or false when the dead letter is gone.
RETRY_SCRIPT = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('XADD', KEYS[2], '*', '{data}', ARGV[2])
""".replace("{data}", DATA_FIELD)


@dataclass(frozen=True)
class Listed:
    id: str  # the dead letter's own entry id (what retry and drop take)
    letter: DeadLetter | None  # None: an entry that is not a dead letter
    raw: bytes


TRUNCATED = "truncated"  # retry's answer for a dead letter whose payload was cut


async def list_dead_letters(redis: Redis, settings: KeysSettings, count: int) -> list[Listed]:
    """The oldest ``count`` dead letters."""
    entries: Any = await redis.xrange(settings.dead_letter_stream, count=count)
    return [_listed(entry_id, fields) for entry_id, fields in entries]


async def retry(redis: Redis, settings: KeysSettings, ids: list[str]) -> dict[str, str | None]:
    """Each dead letter's payload back onto its commands stream; per id, that stream and the
    new command entry's id ("<stream> <id>"), or None if there is no such dead letter. A dead
    letter whose payload was cut (``truncated``) no longer holds the command: it is left where
    it is, with TRUNCATED."""
    script = redis.register_script(RETRY_SCRIPT)
    out: dict[str, str | None] = {}
    for dead_id in ids:
        found = await _read(redis, settings, dead_id)
        if found is None or found.letter is None:
            out[dead_id] = None
            continue
        if found.letter.truncated:
            out[dead_id] = TRUNCATED
            continue
        target = retry_stream(settings, found.letter.payload)
        if is_cluster(redis):
            new_id = await redis.xadd(target, {DATA_FIELD: found.letter.payload})
            await redis.xdel(settings.dead_letter_stream, dead_id)
        else:
            keys = [settings.dead_letter_stream, target]
            new_id = await script(keys=keys, args=[dead_id, found.letter.payload])
        out[dead_id] = f"{target} {_text(new_id)}" if new_id else None
    return out


def retry_stream(settings: KeysSettings, payload: str) -> str:
    """The commands stream a dead letter's payload goes back to."""
    try:
        organization_id = json.loads(payload).get("organization_id")
    except (ValueError, AttributeError):
        organization_id = None
    if not isinstance(organization_id, str):
        return settings.partition_streams()[0]
    return commands_stream_for(organization_id, settings.commands_stream, settings.partitions)


async def drop(redis: Redis, settings: KeysSettings, ids: list[str]) -> dict[str, bool]:
    """Remove dead letters; per id, whether it was there."""
    out: dict[str, bool] = {}
    for dead_id in ids:
        try:
            out[dead_id] = bool(await redis.xdel(settings.dead_letter_stream, dead_id))
        except ResponseError:  # not an entry id at all
            out[dead_id] = False
    return out


async def _read(redis: Redis, settings: KeysSettings, dead_id: str) -> Listed | None:
    try:
        entries: Any = await redis.xrange(
            settings.dead_letter_stream, min=dead_id, max=dead_id, count=1
        )
    except ResponseError:  # not an entry id at all
        return None
    return _listed(*entries[0]) if entries else None


def _listed(entry_id: Any, fields: dict[bytes, bytes]) -> Listed:
    raw = fields.get(_DATA_KEY, b"")
    try:
        letter: DeadLetter | None = _letter.decode(raw)
    except msgspec.DecodeError:
        letter = None
    return Listed(_text(entry_id), letter, raw)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- the command line -----------------------------------------------------------------------


async def run_command(
    settings: KeysSettings, action: str, ids: list[str], count: int, out: TextIO, err: TextIO
) -> int:
    """`apikeys dead-letters list|retry|drop`; returns the exit status (1: an id not found)."""
    redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    try:
        if action == "list":
            listed = await list_dead_letters(redis, settings, count)
            for item in listed:
                out.write(_line(item) + "\n")
            err.write(f"{len(listed)} dead letters listed\n")
            return 0
        if action == "retry":
            retried = await retry(redis, settings, ids)
            for dead_id, new_id in retried.items():
                if new_id is None:
                    err.write(f"no dead letter {dead_id}\n")
                elif new_id == TRUNCATED:
                    err.write(f"not retried {dead_id}: its payload was truncated\n")
                else:
                    out.write(f"retried {dead_id} as {new_id}\n")
            return 0 if all(v not in (None, TRUNCATED) for v in retried.values()) else 1
        dropped = await drop(redis, settings, ids)
        for dead_id, was_there in dropped.items():
            if was_there:
                out.write(f"dropped {dead_id}\n")
            else:
                err.write(f"no dead letter {dead_id}\n")
        return 0 if all(dropped.values()) else 1
    finally:
        await redis.aclose()


def _line(item: Listed) -> str:
    if item.letter is None:
        body: dict[str, Any] = {"raw": item.raw.decode("utf-8", errors="replace")}
    else:
        body = msgspec.structs.asdict(item.letter)
    return json.dumps({"id": item.id, **body}, ensure_ascii=False)
