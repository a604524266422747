"""The Redis client settings: the cluster flag, a cluster URL naming several nodes, keys kept
in one hash slot, the stream keys of a read found in the command itself, and which cluster
errors are outages (waited out) rather than failures."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from redis import exceptions as redis_errors
from redis.crc import key_slot

from services.common.redis_client import (
    cluster_nodes,
    cluster_setting,
    same_slot_key,
    stream_read_keys,
)
from services.common.resilience import is_transient


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("1", True), ("false", False), ("", False)]
)
def test_the_cluster_setting_reads_true_and_false(value: str, expected: bool) -> None:
    assert cluster_setting({"APIKEYS_REDIS_CLUSTER": value}) is expected
    assert cluster_setting({}) is False


def test_a_cluster_setting_that_is_not_a_flag_is_refused() -> None:
    with pytest.raises(ValueError, match="APIKEYS_REDIS_CLUSTER"):
        cluster_setting({"APIKEYS_REDIS_CLUSTER": "maybe"})


def test_a_cluster_url_may_name_several_nodes() -> None:
    first, nodes = cluster_nodes("redis://user:secret@r1:7000,r2:7001,r3/0")
    assert first == "redis://user:secret@r1:7000/0"
    assert nodes == [("r1", 7000), ("r2", 7001), ("r3", 6379)]
    assert cluster_nodes("redis://127.0.0.1:6380/0") == (
        "redis://127.0.0.1:6380/0",
        [("127.0.0.1", 6380)],
    )


@pytest.mark.parametrize("key", ["apikeys.results", "apikeys.dead-letter", "x{tag}y"])
def test_a_same_slot_key_lives_in_the_keys_slot(key: str) -> None:
    marker = same_slot_key(key, ".answered.apikeys.commands.1-0")
    assert marker != key
    assert key_slot(marker.encode()) == key_slot(key.encode())


@pytest.mark.parametrize(
    "error",
    [
        redis_errors.ClusterDownError("CLUSTERDOWN The cluster is down"),
        redis_errors.TryAgainError("TRYAGAIN"),
        redis_errors.MovedError("3999 127.0.0.1:6381"),
        redis_errors.ReadOnlyError("READONLY You can't write against a read only replica."),
        redis_errors.SlotNotCoveredError("slot 1 not covered"),
        redis_errors.RedisClusterException("Redis Cluster cannot be connected."),
    ],
)
def test_a_cluster_failing_over_is_an_outage(error: Exception) -> None:
    assert is_transient(error)


def test_a_cross_slot_script_is_a_failure_not_an_outage() -> None:
    assert not is_transient(redis_errors.ResponseError("CROSSSLOT Keys don't hash to the same"))
    assert not is_transient(redis_errors.RedisClusterException("No way to dispatch this command"))


async def test_a_client_loop_stops_in_a_task_that_carried_on_after_its_cancellation() -> None:
    from client.connection import stop_if_cancelled

    turns = 0

    async def subscriber_loop() -> None:
        nonlocal turns
        while True:
            stop_if_cancelled()
            turns += 1
            with contextlib.suppress(asyncio.CancelledError):  # as redis-py's send can, on 3.11
                await asyncio.sleep(0.01)

    task = asyncio.create_task(subscriber_loop())
    await asyncio.sleep(0.03)
    task.cancel()
    await asyncio.wait_for(asyncio.wait({task}), 1.0)
    assert task.cancelled() and turns > 1


async def test_a_client_loop_runs_on_in_a_task_nobody_cancelled() -> None:
    from client.connection import stop_if_cancelled

    async def turn() -> bool:
        stop_if_cancelled()
        return True

    assert await asyncio.create_task(turn())


@pytest.mark.parametrize(
    ("command", "keys"),
    [
        (["XREADGROUP", b"GROUP", "g", "c", b"COUNT", "5", b"BLOCK", "1000", b"STREAMS", "s", ">"],
         ("s",)),
        # a group or consumer named like an option is an argument, not the option
        (["XREADGROUP", "GROUP", "STREAMS", "COUNT", "NOACK", "STREAMS", "a", "b", "0", "0"],
         ("a", "b")),
        (["XREAD", b"BLOCK", "0", b"COUNT", "1", b"STREAMS", b"apikeys.events", b"12-1"],
         (b"apikeys.events",)),
        (["xread", "streams", "s", "$"], ("s",)),
    ],
)  # fmt: skip
def test_the_streams_of_a_read_are_found_in_the_command(
    command: list[str | bytes], keys: tuple[str | bytes, ...]
) -> None:
    assert stream_read_keys(command) == keys


@pytest.mark.parametrize(
    "command",
    [
        ["XADD", "s", "*", "f", "v"],  # not a read: redis-py's own lookup
        ["XREAD", "STREAMS", "a", "b", "0"],  # keys and ids do not pair up
        ["XREAD", "COUNT", "1"],  # no STREAMS
        ["XREADGROUP", "SOMETHING-NEW", "STREAMS", "s", ">"],  # an option not known here
    ],
)
def test_a_command_not_understood_is_left_to_redis_py(command: list[str]) -> None:
    assert stream_read_keys(command) is None


def test_the_client_librarys_cluster_client_finds_stream_keys_in_the_command() -> None:
    """As the services' clients do: a stream read must not depend on one node answering a key
    lookup (that node may be the primary that just failed)."""
    from client.cluster_reads import StreamKeysParser
    from client.connection import connect

    client: Any = connect("redis://127.0.0.1:7000,127.0.0.1:7001/0", cluster=True)
    assert isinstance(client.commands_parser, StreamKeysParser)
