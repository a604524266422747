"""Dead letters stay until an operator acts: `apikeys dead-letters list`, `retry ID...` (the
original payload back onto the commands stream) and `drop ID...`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis as sync_redis
from redis.asyncio import Redis

from contracts.codec import json_encoder
from contracts.results import DeadLetter
from services import cli
from services.keys.processor import CommandProcessor, Entry
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication
from services.keys.streams import dead_letters
from services.keys.streams.consumer import CommandConsumer, ensure_group
from tests.support.keys_settings import keys_settings
from tests.support.scenario import organization_setup


class FailingOn(CommandProcessor):
    """Fails unexpectedly on one command id: with max_deliveries=1 it is dead-lettered."""

    def __init__(self, app: ApiKeysApplication, poison: str):
        super().__init__(app)
        self.poison = poison

    def process(self, entries: list[Entry]) -> list:  # type: ignore[override]
        if any(e.command.command_id == self.poison for e in entries):
            raise RuntimeError("unexpected failure")
        return super().process(entries)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def settings_for(redis_url: str, unique: str) -> KeysSettings:
    return keys_settings(redis_url, unique, max_deliveries=1)


async def consume(redis: Redis, consumer: CommandConsumer) -> None:
    settings = consumer.settings
    reply = await redis.xreadgroup(
        settings.group, settings.consumer, {settings.commands_stream: ">"}, count=100
    )
    entries = reply[0][1] if reply else []
    await consumer.handle([i for i, _ in entries], [d for _, d in entries])


async def test_a_retried_dead_letter_is_handled_again_and_a_dropped_one_is_gone(
    redis: Redis, redis_url: str, unique: str, tmp_path: Path
) -> None:
    settings = settings_for(redis_url, unique)
    await ensure_group(redis, settings.commands_stream, settings.group)
    app = ApiKeysApplication(f"sqlite:///{tmp_path / 'e.db'}")
    command = organization_setup("acme", locations=0, roles=0)[0]
    failing = CommandConsumer(
        settings, FailingOn(app, command["command_id"]), redis, retry_delays=()
    )
    await redis.xadd(settings.commands_stream, {"__data__": json.dumps(command)})
    await redis.xadd(settings.commands_stream, {"__data__": "not json"})
    await consume(redis, failing)
    listed = await dead_letters.list_dead_letters(redis, settings, count=10)
    assert [item.letter.reason for item in listed if item.letter] == [
        "handling failed 1 times",
        "not a JSON object",
    ]
    assert await redis.xlen(settings.commands_stream) == 0  # answered entries leave
    retried = await dead_letters.retry(redis, settings, [listed[0].id, "1-1"])
    assert retried[listed[0].id] is not None and retried["1-1"] is None
    [(_, fields)] = await redis.xrange(settings.commands_stream)
    assert json.loads(fields[b"__data__"]) == command  # the original payload
    healthy = CommandConsumer(settings, CommandProcessor(app), redis)
    await consume(redis, healthy)
    results = [json.loads(f[b"__data__"]) for _, f in await redis.xrange(settings.results_stream)]
    assert [(r["command_id"], r["status"]) for r in results] == [
        (command["command_id"], "accepted")
    ]
    assert await dead_letters.drop(redis, settings, [listed[1].id, "nonsense"]) == {
        listed[1].id: True,
        "nonsense": False,
    }
    assert await dead_letters.list_dead_letters(redis, settings, count=10) == []
    # retrying twice puts it back once
    assert await dead_letters.retry(redis, settings, [listed[0].id]) == {listed[0].id: None}
    app.close()


def test_the_dead_letters_command_lists_retries_and_drops(
    redis_url: str, unique: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    settings = settings_for(redis_url, unique)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("APIKEYS_COMMANDS_STREAM", settings.commands_stream)
    monkeypatch.setenv("APIKEYS_DEAD_LETTER_STREAM", settings.dead_letter_stream)
    client = sync_redis.Redis.from_url(redis_url)
    letter = DeadLetter(entry_id="5-0", stream=settings.commands_stream, reason="r", payload="{}")
    ids = [
        client.xadd(settings.dead_letter_stream, {"__data__": json_encoder.encode(letter)}).decode()
        for _ in range(3)
    ]
    assert cli.main(["dead-letters", "list"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["id"] for line in lines] == ids
    assert lines[0] == {"id": ids[0], **json.loads(json_encoder.encode(letter))}
    assert cli.main(["dead-letters", "retry", ids[0]]) == 0
    assert f"retried {ids[0]}" in capsys.readouterr().out
    assert client.xlen(settings.commands_stream) == 1
    assert cli.main(["dead-letters", "drop", ids[1], "9-9"]) == 1  # one id was not there
    captured = capsys.readouterr()
    assert f"dropped {ids[1]}" in captured.out and "no dead letter 9-9" in captured.err
    assert [i.decode() for i, _ in client.xrange(settings.dead_letter_stream)] == [ids[2]]
    assert cli.main(["dead-letters", "retry"]) == 2  # ids are required
    client.close()


async def test_a_dead_letter_with_a_truncated_payload_is_not_retried(
    redis: Redis, redis_url: str, unique: str
) -> None:
    settings = settings_for(redis_url, unique)
    letter = DeadLetter(
        entry_id="1-0",
        stream=settings.commands_stream,
        reason="entry_too_large",
        payload='{"type": "Rena',
        truncated=True,
    )
    dead_id = await redis.xadd(
        settings.dead_letter_stream, {"__data__": json_encoder.encode(letter)}
    )
    dead_id = dead_id.decode()
    assert await dead_letters.retry(redis, settings, [dead_id]) == {dead_id: dead_letters.TRUNCATED}
    assert await redis.xlen(settings.commands_stream) == 0  # nothing put back
    assert [item.id for item in await dead_letters.list_dead_letters(redis, settings, 10)] == [
        dead_id
    ]
