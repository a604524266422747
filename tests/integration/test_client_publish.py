"""The client's publishing against the real keys service: results awaited by command id, typed
helpers, rejections, resends after a timeout, partitions."""

from __future__ import annotations

import asyncio
import signal
import uuid

import pytest

from client import ApiKeysClient, CommandRejected, CommandTimeout, InvalidCommand, SyncClient
from client.errors import PartitionMismatch
from client.partitions import PARTITIONS_KEY, commands_stream_for, partition_of
from contracts.commands import EnableApiModule
from contracts.tokens import token_sha256
from tests.integration.conftest import Product


def org() -> str:
    return f"org-{uuid.uuid4().hex[:8]}"


async def set_up(client: ApiKeysClient, organization: str) -> None:
    await client.enable_api_module(organization, raise_on_reject=True)
    await client.grant_api_administrator(organization, "alice", raise_on_reject=True)
    await client.define_location(organization, "plant-7", "Plant 7", raise_on_reject=True)
    await client.define_role(
        organization, "exporter", "Exporter", [("view_private", "location_and_below")]
    )


async def test_create_key_returns_the_token_whose_hash_was_sent(product: Product) -> None:
    organization = org()
    async with ApiKeysClient(product.settings()) as client:
        await set_up(client, organization)
        created = await client.create_key(
            organization, "alice", "Nightly export", ["plant-7"], ["exporter"]
        )
        assert created.accepted and created.result.position
        assert created.result.key_id == created.key_id
        answer = await client.verify(created.token, min_position=created.result.position)
        assert answer.valid and answer.key_id == created.key_id
        check = await client.check(
            created.key_id, "view_private", "plant-7", min_position=created.result.position
        )
        assert check.allowed
        raw = await client.redis.xrange(product.topology.streams.commands)
        assert all(created.token.encode() not in f[b"__data__"] for _, f in raw)


async def test_a_rejection_is_a_typed_result_unless_asked_to_raise(product: Product) -> None:
    organization = org()
    async with ApiKeysClient(product.settings()) as client:
        await set_up(client, organization)
        result = await client.rename_key(organization, "alice", "no-such-key", "x")
        assert result.status == "rejected" and result.error is not None
        assert result.error.code == "unknown_key"
        with pytest.raises(CommandRejected) as raised:
            await client.rename_key(organization, "alice", "no-such-key", "x", raise_on_reject=True)
        assert raised.value.code == "unknown_key"


async def test_a_command_id_is_assigned_and_a_resend_is_a_duplicate(product: Product) -> None:
    organization = org()
    async with ApiKeysClient(product.settings()) as client:
        first = await client.send(EnableApiModule(command_id="", organization_id=organization))
        assert first.status == "accepted" and first.command_id
        again = await client.send(
            EnableApiModule(command_id=first.command_id, organization_id=organization)
        )
        assert again.status == "duplicate" and again.position == first.position


async def test_many_concurrent_sends_each_get_their_own_result(product: Product) -> None:
    organization = org()
    async with ApiKeysClient(product.settings()) as client:
        await set_up(client, organization)
        results = await asyncio.gather(
            *(
                client.define_location(organization, f"loc-{n}", f"Location {n}", "plant-7")
                for n in range(200)
            )
        )
    assert [r.status for r in results] == ["accepted"] * 200
    assert len({r.command_id for r in results}) == 200


async def test_an_invalid_command_is_refused_before_it_is_sent(product: Product) -> None:
    async with ApiKeysClient(product.settings()) as client:
        with pytest.raises(InvalidCommand):
            await client.define_location(org(), "x" * 201, "too long an id")


async def test_no_result_resends_with_the_same_command_id_then_times_out(
    product: Product,
) -> None:
    """A stream nobody reads: the command is sent 1 + resends times, then CommandTimeout."""
    stream = f"nobody-reads-{uuid.uuid4().hex[:8]}"
    settings = product.settings(commands_stream=stream, send_timeout=0.3, resends=2)
    async with ApiKeysClient(settings) as client:
        with pytest.raises(CommandTimeout) as raised:
            await client.enable_api_module(org(), command_id="lost-1")
        assert raised.value.attempts == 3
        sent = await client.redis.xrange(stream)
    assert len(sent) == 3
    assert all(b'"command_id":"lost-1"' in fields[b"__data__"] for _, fields in sent)


async def test_a_resend_after_a_timeout_gets_the_first_outcome(product: Product) -> None:
    """The keys service is stopped while a command waits: the client resends it with the same
    command id, and once the service is back the waiter gets one result."""
    organization = org()
    deployment = product.deployment
    assert deployment.keys is not None
    deployment.keys.popen.send_signal(signal.SIGSTOP)
    try:
        async with ApiKeysClient(product.settings(send_timeout=1.0, resends=20)) as client:
            sending = asyncio.create_task(client.enable_api_module(organization))
            await asyncio.sleep(2.5)  # lets at least two sends go out while the service is stopped
            deployment.keys.popen.send_signal(signal.SIGCONT)
            result = await asyncio.wait_for(sending, 30)
            assert result.status in ("accepted", "duplicate")
            assert result.command_id is not None

            async def answers() -> list[bytes]:
                entries = await client.redis.xrange(product.topology.streams.results)
                mine = result.command_id.encode()  # type: ignore[union-attr]
                return [f[b"__data__"] for _, f in entries if mine in f[b"__data__"]]

            deadline = asyncio.get_running_loop().time() + 20
            while len(await answers()) < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            sent = await answers()
            assert len(sent) >= 2  # the first outcome, then each resend answered duplicate
            assert b'"status":"accepted"' in sent[0]
            assert all(b'"status":"duplicate"' in later for later in sent[1:])
    finally:
        deployment.keys.popen.send_signal(signal.SIGCONT)


async def test_partitions_published_by_the_service_choose_the_stream(product: Product) -> None:
    stream = f"partitioned-{uuid.uuid4().hex[:8]}"
    async with ApiKeysClient(product.settings(commands_stream=stream, send_timeout=0.2)) as raw:
        await raw.redis.set(PARTITIONS_KEY, 4)
        try:
            organization = org()
            async with ApiKeysClient(
                product.settings(commands_stream=stream, send_timeout=0.2, resends=0)
            ) as client:
                with pytest.raises(CommandTimeout):
                    await client.enable_api_module(organization)
            expected = f"{stream}.{partition_of(organization, 4)}"
            assert commands_stream_for(stream, organization, 4) == expected
            assert await raw.redis.xlen(expected) == 1
            async with ApiKeysClient(product.settings(partitions=2)) as mismatched:
                with pytest.raises(PartitionMismatch):
                    await mismatched.enable_api_module(organization)
        finally:
            await raw.redis.delete(PARTITIONS_KEY)


def test_the_sync_client_sends_and_queries(product: Product) -> None:
    organization = org()
    with SyncClient(product.settings()) as client:
        client.enable_api_module(organization, raise_on_reject=True)
        client.grant_api_administrator(organization, "alice")
        client.define_location(organization, "plant-7", "Plant 7")
        created = client.create_key(organization, "alice", "Script key", ["plant-7"])
        assert created.accepted
        answer = client.verify(created.token, min_position=created.result.position)
    assert answer.valid and answer.organization_id == organization
    assert token_sha256(created.token) != created.token
