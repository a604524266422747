"""The client's queries and subscriptions against the real services: typed answers,
read-your-writes, resumable events, a missing range detected, a consumer group's shares."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from client import ApiKeysClient, EventsMissing, ProjectionUnavailable, QueryRejected
from client.subscriber import Subscriber
from contracts import events as ev
from contracts.queries import KeyPermissionsAnswer, OrganizationKeysAnswer
from tests.integration.conftest import Product


async def organization_with_key(
    client: ApiKeysClient, organization: str | None = None
) -> tuple[str, str, int]:
    organization = organization or f"org-{uuid.uuid4().hex[:8]}"
    await client.enable_api_module(organization, raise_on_reject=True)
    await client.grant_api_administrator(organization, "alice", raise_on_reject=True)
    await client.define_location(organization, "plant-7", "Plant 7", raise_on_reject=True)
    await client.define_role(
        organization, "exporter", "Exporter", [("view_private", "location_and_below")]
    )
    created = await client.create_key(
        organization, "alice", "Export", ["plant-7"], ["exporter"], raise_on_reject=True
    )
    assert created.result.position is not None
    return organization, created.key_id, created.result.position


async def test_every_query_answers_with_the_contract_struct(product: Product) -> None:
    async with ApiKeysClient(product.settings()) as client:
        organization, key_id, position = await organization_with_key(client)
        check = await client.check(key_id, "view_private", "plant-7", min_position=position)
        assert check.allowed and check.position >= position
        explained = await client.check(key_id, "view_private", "plant-7", explain=True)
        assert explained.explanation and explained.explanation[0].role_id == "exporter"
        before = await client.check(
            key_id, "view_private", "plant-7", as_of=datetime(2000, 1, 1, tzinfo=UTC)
        )
        assert not before.allowed
        permissions = await client.permissions(key_id)
        assert isinstance(permissions, KeyPermissionsAnswer) and permissions.status == "active"
        holders = await client.keys_with_permission(organization, "view_private", "plant-7")
        assert isinstance(holders, OrganizationKeysAnswer)
        assert [k.key_id for k in holders.keys] == [key_id]
        history = await client.history(key_id, min_position=position)
        assert [e.type for e in history.entries] == ["ApiKeyCreated"]


async def test_history_as_of_ends_at_that_instant(product: Product) -> None:
    async with ApiKeysClient(product.settings()) as client:
        organization, key_id, _ = await organization_with_key(client)
        between = datetime.now(UTC)
        await asyncio.sleep(0.01)
        renamed = await client.rename_key(
            organization, "alice", key_id, "Renamed", raise_on_reject=True
        )
        assert renamed.position is not None
        whole = await client.history(key_id, min_position=renamed.position)
        assert [e.type for e in whole.entries] == ["ApiKeyCreated", "ApiKeyRenamed"]
        then = await client.history(key_id, as_of=between, min_position=renamed.position)
        assert [e.type for e in then.entries] == ["ApiKeyCreated"]
        before = await client.history(key_id, as_of=datetime(2000, 1, 1, tzinfo=UTC))
        assert before.entries == []


async def test_query_errors_are_typed(product: Product) -> None:
    async with ApiKeysClient(product.settings()) as client:
        with pytest.raises(QueryRejected) as rejected:
            await client.check("k", "p", "l", min_position=-1)
        assert rejected.value.status == 400 and rejected.value.error
        with pytest.raises(ProjectionUnavailable) as unavailable:
            await client.check("k", "p", "l", min_position=10**12)
        assert unavailable.value.position is not None
    async with ApiKeysClient(product.settings(projection_url="http://127.0.0.1:9")) as client:
        with pytest.raises(ProjectionUnavailable):
            await client.check("k", "p", "l")


async def collect(iterator, count: int, timeout: float = 20.0) -> list[ev.AnyEvent]:  # type: ignore[no-untyped-def]
    found: list[ev.AnyEvent] = []

    async def take() -> None:
        async for event in iterator:
            found.append(event)
            if len(found) == count:
                return

    await asyncio.wait_for(take(), timeout)
    return found


async def published(client: ApiKeysClient, stream: str, position: int) -> None:
    for _ in range(200):
        top = await client.redis.xrevrange(stream, count=1)
        if top and int(top[0][0].split(b"-")[0]) >= position:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"position {position} not published on {stream} within 10 s")


async def test_events_resume_after_a_position_without_gap_or_repeat(product: Product) -> None:
    async with ApiKeysClient(product.settings()) as client:
        _, key_id, position = await organization_with_key(client)
        first = await collect(client.events(after=0), 3)
        assert all(isinstance(e, ev.Event) for e in first)
        resumed = await collect(client.events(after=first[1].position), 1)
        assert resumed[0].position == first[2].position
        last = await collect(client.events(after=position - 1), 1)
        assert isinstance(last[0], ev.ApiKeyCreated) and last[0].key_id == key_id


async def test_a_position_older_than_the_stream_raises_events_missing(product: Product) -> None:
    stream = f"window-{uuid.uuid4().hex[:8]}"
    async with ApiKeysClient(product.settings(events_stream=stream)) as client:
        source = product.topology.streams.events
        for entry_id, fields in await client.redis.xrange(source, count=5):
            await client.redis.xadd(stream, fields, id=entry_id)
        entries = await client.redis.xrange(stream)
        assert len(entries) == 5
        await client.redis.xdel(stream, entries[1][0], entries[2][0])  # the window moved on
        kept_first = (await collect(client.events(after=0), 1))[0]
        with pytest.raises(EventsMissing) as missing:
            await collect(client.events(after=kept_first.position), 1)
        assert missing.value.after_position == kept_first.position
        assert "apikeys export --since" in str(missing.value)


async def test_a_consumer_group_shares_the_events_out_once(product: Product) -> None:
    async with ApiKeysClient(product.settings()) as client:
        _, _, position = await organization_with_key(client)
        # the result comes before the relay has published the events: wait for them
        await published(client, product.topology.streams.events, position)
        total = await client.redis.xlen(product.topology.streams.events)
        group = f"g-{uuid.uuid4().hex[:6]}"
        one = client.group_events(group, "one", count=3)
        two = client.group_events(group, "two", count=3)
        seen: list[int] = []

        async def drain(iterator) -> None:  # type: ignore[no-untyped-def]
            async for event in iterator:
                seen.append(event.position)
                await asyncio.sleep(0)
                if len(seen) >= total:
                    return

        done, pending = await asyncio.wait(
            {asyncio.create_task(drain(one)), asyncio.create_task(drain(two))},
            timeout=20,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in pending:
            task.cancel()
        assert done
    assert sorted(seen) == sorted(set(seen)) and len(seen) == total


async def test_a_group_raises_events_missing_when_the_stream_is_trimmed_between_deliveries(
    product: Product,
) -> None:
    stream = f"window-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    async with ApiKeysClient(product.settings(events_stream=stream)) as client:
        _, _, position = await organization_with_key(client)
        await published(client, product.topology.streams.events, position)
        source = await client.redis.xrange(product.topology.streams.events, count=6)
        positions = [int(entry_id.split(b"-")[0]) for entry_id, _ in source]
        for entry_id, fields in source[:3]:
            await client.redis.xadd(stream, fields, id=entry_id)
        one = client.group_events(group, "one", count=10)
        first = await collect(one, 3)
        assert [e.position for e in first] == positions[:3]

        for entry_id, fields in source[3:]:
            await client.redis.xadd(stream, fields, id=entry_id)
        # the window moves on before the group comes to the fourth event
        await client.redis.xtrim(stream, minid=source[4][0], approximate=False)
        with pytest.raises(EventsMissing) as missing:
            await collect(one, 1)
        assert (missing.value.after_position, missing.value.up_to_position) == (
            positions[2],
            positions[3],
        )
        assert f"resume_group({group!r})" in str(missing.value)
        # every consumer of the group is told, until the gap was caught up with
        with pytest.raises(EventsMissing):
            await collect(client.group_events(group, "two"), 1)
        await client.resume_group(group)
        rest = await collect(client.group_events(group, "one"), 2)
        assert [e.position for e in rest] == positions[4:6]


async def test_consecutive_deliveries_to_several_consumers_raise_nothing(
    product: Product,
) -> None:
    """Deliveries alternate between two consumers of one group: each checks against the
    group's last delivery, not its own (no false gap)."""
    stream = f"shared-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    async with ApiKeysClient(product.settings(events_stream=stream)) as client:
        _, _, position = await organization_with_key(client)
        await published(client, product.topology.streams.events, position)
        source = await client.redis.xrange(product.topology.streams.events, count=8)
        one = client.group_events(group, "one", count=1)
        two = client.group_events(group, "two", count=1)
        seen: list[int] = []
        for index, (entry_id, fields) in enumerate(source):
            await client.redis.xadd(stream, fields, id=entry_id)
            taken = await collect(one if index % 2 == 0 else two, 1)
            seen.extend(e.position for e in taken)
        assert seen == [int(i.split(b"-")[0]) for i, _ in source]


async def pending_events_trimmed_before_they_were_handled(
    client: ApiKeysClient, source_stream: str
) -> EventsMissing:
    """Consumer one is given three events and handles only the first (then stops); the
    stream is trimmed past all three; consumer two claims one's pending entries."""
    stream = f"claimed-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    source = await client.redis.xrange(source_stream, count=3)
    for entry_id, fields in source:
        await client.redis.xadd(stream, fields, id=entry_id)
    subscriber = Subscriber(client.redis, stream)
    one = subscriber.group_events(group, "one", count=10)
    await collect(one, 1)
    await client.redis.xtrim(stream, maxlen=0, approximate=False)
    await asyncio.sleep(0.1)
    with pytest.raises(EventsMissing) as missing:
        await collect(subscriber.group_events(group, "two", claim_idle_ms=50), 1)
    positions = [int(entry_id.split(b"-")[0]) for entry_id, _ in source]
    # one never asked for the next event, so not even the first was acknowledged
    assert (missing.value.after_position, missing.value.up_to_position) == (
        positions[0] - 1,
        positions[2],
    )
    return missing.value


async def test_pending_events_trimmed_before_they_were_handled_raise_events_missing(
    product: Product,
) -> None:
    async with ApiKeysClient(product.settings()) as client:
        _, _, position = await organization_with_key(client)
        await published(client, product.topology.streams.events, position)
        await pending_events_trimmed_before_they_were_handled(
            client, product.topology.streams.events
        )
