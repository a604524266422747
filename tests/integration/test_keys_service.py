"""The keys service as a process, driven only through XADD and stream reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.keys_process import KeysProcess, wait_until
from tests.support.scenario import create_key, key_command, organization_setup


@pytest.fixture
def keys(
    redis_url: str, event_store_url: str, unique: str, tmp_path: Path
) -> Iterator[KeysProcess]:
    process = KeysProcess(redis_url, event_store_url, f"t{unique}", tmp_path).start()
    yield process
    process.stop()


def test_a_created_key_is_answered_and_its_events_published(keys: KeysProcess) -> None:
    setup = organization_setup("acme")
    keys.send(*setup, create_key("acme", "k1"))
    results = keys.wait_for_results(len(setup) + 1)
    assert [r["status"] for r in results] == ["accepted"] * (len(setup) + 1)
    created = results[-1]
    assert created["type"] == "CreateApiKey" and created["key_id"] == "k1"
    keys.wait_for_events_up_to(created["position"])
    events = keys.read("events")
    positions = [body["position"] for _, body in events]
    assert positions == sorted(set(positions))
    assert all(entry_id == f"{body['position']}-1" for entry_id, body in events)
    last = events[-1][1]
    assert last["type"] == "ApiKeyCreated" and last["position"] == created["position"]
    assert last["key"]["location_ids"] == ["L0", "L1"]
    assert last["key"]["matrix"] == [
        {"role_id": "R0", "location_id": "L0", "applies": True},
        {"role_id": "R0", "location_id": "L1", "applies": True},
    ]
    assert last["actor_id"] == "alice" and last["command_id"] == created["command_id"]


def test_rejections_carry_error_codes(keys: KeysProcess) -> None:
    keys.send(create_key("nowhere", "k1"))
    keys.send(*organization_setup("acme"))
    keys.send(key_command("ToggleRoleLocation", "acme", "missing", role_id="R0", location_id="L0"))
    results = keys.wait_for_results(1 + len(organization_setup("x")) + 1)
    assert results[0]["status"] == "rejected"
    assert results[0]["error"]["code"] == "unknown_organization"
    assert results[-1]["error"]["code"] == "unknown_key"
    assert "position" not in results[-1]


def test_bad_entries_are_dead_lettered_and_consuming_goes_on(keys: KeysProcess) -> None:
    not_json = keys.send_raw(b"\xff not json")
    array = keys.send_raw("[1, 2]")
    unknown = keys.send_raw('{"type": "LaunchRockets", "command_id": "x"}')
    invalid = keys.send_raw('{"type": "CreateApiKey", "command_id": "bad-1"}')
    keys.send(*organization_setup("acme", locations=1, roles=0))
    results = keys.wait_for_results(1 + 3)
    assert results[0]["command_id"] == "bad-1"
    assert results[0]["error"]["code"] == "invalid_command"
    assert [r["status"] for r in results[1:]] == ["accepted"] * 3
    dead = {body["entry_id"]: body for _, body in keys.read("dead")}
    assert set(dead) == {not_json, array, unknown, invalid}
    assert "unknown command type" in dead[unknown]["reason"]
    assert dead[array]["payload"] == "[1, 2]"
    pending = keys.redis.xpending(keys.streams["commands"], "apikeys-keys")
    assert pending["pending"] == 0


def test_a_resent_command_is_a_duplicate_with_the_first_position(keys: KeysProcess) -> None:
    setup = organization_setup("acme")
    create = create_key("acme", "k1")
    keys.send(*setup, create)
    first = keys.wait_for_results(len(setup) + 1)[-1]
    keys.send(create)
    again = keys.wait_for_results(len(setup) + 2)[-1]
    assert again["status"] == "duplicate"
    assert again["position"] == first["position"]
    assert again["command_id"] == first["command_id"]


def test_entries_left_pending_by_a_dead_consumer_are_reclaimed(keys: KeysProcess) -> None:
    keys.send(*organization_setup("acme", locations=1, roles=0))
    keys.wait_for_results(3)
    keys.stop()
    lost = keys.send(key_command("RenameApiKey", "acme", "k1", name="x"))[0]
    keys.redis.xreadgroup("apikeys-keys", "ghost", {keys.streams["commands"]: ">"}, count=10)
    keys.start()
    results = keys.wait_for_results(4, timeout=20)
    assert results[-1]["error"]["code"] == "unknown_key"
    wait_until(
        lambda: keys.redis.xpending(keys.streams["commands"], "apikeys-keys")["pending"] == 0
    )
    assert lost


def test_sigkill_mid_stream_loses_nothing_and_applies_nothing_twice(keys: KeysProcess) -> None:
    setup = organization_setup("acme", locations=3, roles=2)
    keys.send(*setup)
    keys.wait_for_results(len(setup))
    commands = []
    for k in range(300):
        commands.append(
            create_key("acme", f"k{k}", locations=("L0", "L1", "L2"), roles=("R0", "R1"))
        )
        for step in range(3):
            commands.append(
                key_command(
                    "ToggleRoleLocation", "acme", f"k{k}", role_id="R1", location_id=f"L{step}"
                )
            )
    keys.send(*commands)
    wait_until(lambda: keys.redis.xlen(keys.streams["results"]) > len(setup) + 200, 30, 0.005)
    keys.kill()
    answered_before_kill = keys.redis.xlen(keys.streams["results"])
    assert answered_before_kill < len(setup) + len(commands), "the kill came after the end"
    keys.start()
    results = keys.wait_for_results(len(setup) + len(commands), timeout=60)
    by_command: dict[str, set[tuple]] = {}
    for r in results:
        by_command.setdefault(r["command_id"], set()).add(
            (r["status"], r.get("position"), str(r.get("error")))
        )
    expected = {c["command_id"] for c in setup + commands}
    assert set(by_command) == expected
    assert all(len(outcomes) == 1 for outcomes in by_command.values())
    assert all(next(iter(o))[0] == "accepted" for o in by_command.values())
    last_position = max(r["position"] for r in results)
    keys.wait_for_events_up_to(last_position)
    events = keys.read("events")
    positions = [body["position"] for _, body in events]
    assert positions == sorted(set(positions))
    counts = Counter(body["type"] for _, body in events)
    assert counts["ApiKeyCreated"] == 300
    assert counts["RoleLocationToggled"] == 900
    finals = {}
    for _, body in events:
        if body["type"] == "RoleLocationToggled":
            finals[body["key_id"]] = body["key"]["matrix"]
    off = [c for c in finals["k7"] if not c["applies"]]
    assert off == [{"role_id": "R1", "location_id": f"L{i}", "applies": False} for i in range(3)]


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_the_relay_process_ends_with_the_keys_service(keys: KeysProcess, stop: str) -> None:
    assert keys.process is not None
    children = wait_until(lambda: _children(keys.process.pid))  # type: ignore[union-attr]
    assert any(_alive(child) for child in children)
    if stop == "SIGKILL":
        keys.kill()
    else:
        keys.stop()
    wait_until(lambda: not any(_alive(child) for child in children), timeout=10)


def test_no_pending_or_undelivered_command_is_trimmed_across_a_sigkill(
    keys: KeysProcess,
) -> None:
    setup = organization_setup("acme", locations=2, roles=1)
    commands = [*setup]
    for k in range(400):
        commands.append(create_key("acme", f"k{k}", locations=("L0", "L1"), roles=("R0",)))
        commands.append(key_command("RenameApiKey", "acme", f"k{k}", name=f"n{k}"))
    entry_ids = dict(zip(keys.send(*commands), (c["command_id"] for c in commands), strict=True))
    wait_until(lambda: keys.redis.xlen(keys.streams["results"]) > 100, 30, 0.005)
    keys.kill()
    answered = {r["command_id"] for r in keys.results()}
    assert len(answered) < len(commands), "the kill came after the end"
    kept = {i.decode() for i, _ in keys.redis.xrange(keys.streams["commands"])}
    unanswered = {entry for entry, command_id in entry_ids.items() if command_id not in answered}
    assert unanswered <= kept  # pending or never delivered: still on the stream
    assert len(kept) < len(commands)  # answered ones left it
    keys.start()
    results = keys.wait_for_results(len(commands), timeout=60)
    assert Counter(r["command_id"] for r in results) == Counter(entry_ids.values())
    assert all(r["status"] == "accepted" for r in results)
    wait_until(lambda: keys.redis.xlen(keys.streams["commands"]) == 0)
    assert keys.redis.xpending(keys.streams["commands"], "apikeys-keys")["pending"] == 0


def test_the_service_keeps_results_events_and_dead_letters_within_their_counts(
    redis_url: str, event_store_url: str, unique: str, tmp_path: Path
) -> None:
    keys = KeysProcess(redis_url, event_store_url, f"t{unique}", tmp_path)
    keys.env.update(
        APIKEYS_RESULTS_MAX_ENTRIES="3",
        APIKEYS_EVENTS_MAX_ENTRIES="2",
        APIKEYS_DEAD_LETTER_MAX_ENTRIES="1",
    )
    keys.start()
    try:
        setup = organization_setup("acme", locations=3, roles=2)
        keys.send(*setup)
        for _ in range(3):
            keys.send_raw("not json")
        last = keys.send(create_key("acme", "k1"))[0]

        def trimmed() -> bool:
            lengths = [keys.redis.xlen(keys.streams[s]) for s in ("results", "events", "dead")]
            return lengths == [3, 2, 1] and keys.redis.xlen(keys.streams["commands"]) == 0

        wait_until(trimmed, timeout=30)
        assert keys.results()[-1]["type"] == "CreateApiKey"
        assert keys.read("events")[-1][1]["type"] == "ApiKeyCreated"
        assert last
    finally:
        keys.stop()
