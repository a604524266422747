"""Stream reads on a Redis Cluster routed by the stream the command names (shared by the
services and the client library)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis._parsers import AsyncCommandsParser
from redis.asyncio.cluster import RedisCluster

# The options of XREAD and XREADGROUP before STREAMS, and how many arguments each takes.
_READ_OPTIONS = {
    "GROUP": 2,
    "COUNT": 1,
    "MAXCOUNT": 1,
    "MAXSIZE": 1,
    "BLOCK": 1,
    "CLAIM": 1,
    "NOACK": 0,
}


class StreamKeysParser(AsyncCommandsParser):
    """redis-py's cluster client finds the keys of XREAD and XREADGROUP (commands whose keys
    "move") by asking one node, COMMAND GETKEYS on the node that was its default when it
    last read the cluster's layout. When that node dies, the lookup fails with a connection
    error that, unlike a failed command, does not make the client read the layout again: every
    later XREAD(GROUP) fails the same way, for ever, although the stream's own node is up (a
    partition's reader stopped after a primary failover). The stream keys are in the command
    itself (after STREAMS), so they are read from it here and no node is asked."""

    async def get_keys(self, *args: Any) -> tuple[Any, ...] | None:
        keys = stream_read_keys(args)
        if keys is not None:
            return keys
        return await super().get_keys(*args)


def stream_read_keys(args: Sequence[Any]) -> tuple[Any, ...] | None:
    """The stream keys of an XREAD or XREADGROUP command (its name first), None for any other
    command or one this does not understand (then redis-py's own lookup decides)."""
    if not args or _word(args[0]) not in ("XREAD", "XREADGROUP"):
        return None
    at = 1
    while at < len(args):
        word = _word(args[at])
        if word == "STREAMS":
            rest = args[at + 1 :]
            if not rest or len(rest) % 2:
                return None
            return tuple(rest[: len(rest) // 2])
        if word not in _READ_OPTIONS:
            return None
        at += 1 + _READ_OPTIONS[word]
    return None


def _word(arg: Any) -> str:
    if isinstance(arg, bytes):
        return arg.decode(errors="replace").upper()
    return str(arg).upper()


def find_stream_keys_locally(client: Any) -> None:
    """Make a cluster client (ours, or the one FastStream's broker made) route XREAD and
    XREADGROUP by the stream named in the command (``StreamKeysParser``); done before the
    client's first command. A single server's client is left as it is."""
    if not isinstance(client, RedisCluster):
        return
    current = client.commands_parser
    if isinstance(current, StreamKeysParser):
        return
    parser = StreamKeysParser()
    for name in ("commands", "node"):  # what an earlier start-up learned, if any
        if hasattr(current, name):
            setattr(parser, name, getattr(current, name))
    client.commands_parser = parser
