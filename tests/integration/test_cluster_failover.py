"""The product scaled out on a six-node Redis Cluster with PostgreSQL, services as processes:
three keys-service replicas sharing four partitions, two projection replicas. Commands are
applied and answered, events published exactly once per position, the projection replicas
equal a rebuild; through a SIGKILL of the replica holding a partition (the others take its
partitions over) and of the Redis primary holding a partition's stream (its replica is
promoted). Commands lost with a primary's unreplicated tail are resent with the same
command_id, as a client would: they get their first outcome or ``duplicate``."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.partitions import commands_stream_for, partition_streams
from services.keys.partitions.leases import lease_key
from tests.faults.deployment import Streams
from tests.faults.processes import ProcessHarness
from tests.integration.cluster_deployment import ClusterDeployment, Command, wait_until
from tests.support.redis_cluster import LocalRedisCluster
from tests.support.scenario import many_organizations

ORGANIZATIONS = 50
COMMANDS = 20_000
KEYS_PER_ORGANIZATION = 40
QUIET_SECONDS = 10.0  # no new result for this long: what is missing was lost, resend it
PARTITIONS = 4
REPLICAS = ("keys-a", "keys-b", "keys-c")
SEND_RATE = 1000  # commands/s: the kills fall while commands are still coming in


@pytest.fixture
def harness(tmp_path: Path, unique: str) -> Iterator[ProcessHarness]:
    processes = ProcessHarness(tmp_path, marker=f"cluster-{unique}")
    try:
        yield processes
    finally:
        survivors = processes.kill_everything()
        assert not survivors, f"processes left running: {survivors}"


@pytest.fixture
def deployment(
    postgres_url: str,
    private_redis_cluster: LocalRedisCluster,
    harness: ProcessHarness,
    unique: str,
) -> Iterator[ClusterDeployment]:
    made = ClusterDeployment(
        harness,
        private_redis_cluster,
        postgres_url,
        Streams.unique(f"c{unique}"),
        APIKEYS_PARTITIONS=str(PARTITIONS),
        APIKEYS_PARTITIONS_KEY=f"c{unique}.partitions",
    )
    yield made
    made.close()


def test_partitions_survive_a_replica_kill_and_a_redis_primary_failover(
    deployment: ClusterDeployment, tmp_path: Path
) -> None:
    streams = deployment.streams
    commands = many_organizations(ORGANIZATIONS, COMMANDS, KEYS_PER_ORGANIZATION)
    replicas = {name: deployment.start_keys(name) for name in REPLICAS}
    for name in ("projection-1", "projection-2"):
        deployment.start_projection(name, f"sqlite:///{tmp_path / name}.db")

    def stream_of(command: Command) -> str:
        return commands_stream_for(command["organization_id"], streams.commands, PARTITIONS)

    def results_count() -> int:
        return int(deployment.client.xlen(streams.results))

    sender = threading.Thread(
        target=deployment.send, args=(commands, stream_of, SEND_RATE), daemon=True
    )
    sender.start()

    # the replica holding partition 0 dies; the others take its partitions over
    wait_until(lambda: results_count() >= COMMANDS // 5, 120, "a fifth answered")
    partition_0 = partition_names(streams.commands)[0]
    victim = holder(deployment, partition_0)
    held = [s for s in partition_names(streams.commands) if holder(deployment, s) == victim]
    replicas[victim].popen.kill()
    killed_at = time.monotonic()
    wait_until(
        lambda: all(holder(deployment, s) not in ("", victim) for s in held),
        30,
        "the dead replica's partitions taken over",
    )
    takeover = time.monotonic() - killed_at

    # the Redis primary holding partition 0's stream dies; its replica is promoted
    wait_until(lambda: results_count() >= COMMANDS * 2 // 5, 120, "two fifths answered")
    node = deployment.cluster.node_of(partition_0)
    also = [s for s in all_streams(streams) if deployment.cluster.node_of(s) is node]
    promotion = deployment.cluster.kill_primary_of(partition_0)
    sender.join(timeout=120)
    assert not sender.is_alive()

    results = settle(deployment, commands, stream_of)
    print(
        f"\nfailover times: replica {victim} SIGKILL to its {len(held)} partition(s) held by "
        f"others {takeover:.2f} s; Redis primary SIGKILL (holding {', '.join(also)}) to the "
        f"cluster serving its slots again {promotion:.2f} s"
    )
    print(f"\ncommands whose XADD failed and was sent again: {len(deployment.retried)}")
    try:
        check_each_command_once_in_order(commands, results, deployment.resent | deployment.retried)
    except AssertionError:
        for process in deployment.harness.started:
            print(f"\n=== {process.name}\n{process.log_tail(60)}")
        raise
    stored = max(int(a["position"]) for answers in results.values() for a in answers)
    wait_until(lambda: events_top(deployment) >= stored, 60, "every stored event published")
    last = check_events_once_per_position(deployment, commands)
    for name in deployment.projections:
        wait_until(
            lambda name=name: deployment.projection_position(name) >= last, 60, f"{name} caught up"
        )
        rebuilt = deployment.harness.run_cli(
            ["verify-projections"],
            deployment.env(
                APIKEYS_EVENTS_STREAM=streams.events,
                APIKEYS_VIEW_STORE=f"sqlite:///{tmp_path / name}.db",
            ),
        )
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr


def partition_names(commands_stream: str) -> list[str]:
    return partition_streams(commands_stream, PARTITIONS)


def all_streams(streams: Streams) -> list[str]:
    return [*partition_names(streams.commands), streams.results, streams.events]


def holder(deployment: ClusterDeployment, stream: str) -> str:
    """The consumer name holding a partition's lease ('' when nobody does)."""
    value: Any = deployment.client.get(lease_key(stream))
    return value.decode().partition("|")[0] if value else ""


def events_top(deployment: ClusterDeployment) -> int:
    last: Any = deployment.client.xrevrange(deployment.streams.events, count=1)
    return int(last[0][0].split(b"-")[0]) if last else 0


def settle(
    deployment: ClusterDeployment, commands: list[Command], stream_of: Any
) -> dict[str, list[Any]]:
    """Wait for every command's result; resend (same command_id) those still without one
    once nothing new has been answered for a while: they were lost with a primary's tail."""
    resent: set[str] = set()
    deadline = time.monotonic() + 90
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        results = deployment.results_by_command()
        missing = [c for c in commands if c["command_id"] not in results]
        if not missing:
            if resent:
                print(f"\n{len(resent)} commands lost with the failed primary's tail, resent")
            return results
        count = sum(len(r) for r in results.values())
        if count != seen:
            seen, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since > QUIET_SECONDS:
            deployment.send(missing, stream_of)
            resent.update(c["command_id"] for c in missing)
            deployment.resent.update(resent)
            quiet_since = time.monotonic()
        time.sleep(0.5)
    for process in deployment.harness.started:
        if process.name.startswith("keys"):
            print(f"\n=== {process.name}\n{process.log_path.read_text()[-60000:]}")
    raise AssertionError(f"{len(missing)} commands never answered, e.g. {missing[:3]}")


def check_each_command_once_in_order(
    commands: list[Command], results: dict[str, list[dict[str, Any]]], resent: set[str]
) -> None:
    """One outcome per command (repeats only as ``duplicate`` with the same position), every
    command accepted, and each organization's commands applied in the order sent. A command
    sent again (its XADD failed, or it was lost with a primary's tail) is applied when it
    gets through, possibly after commands sent after it (replication is asynchronous: README,
    Redis Cluster), so the order is checked among the others."""
    last_position: dict[str, int] = defaultdict(int)
    previous: dict[str, Any] = {}
    for command in commands:
        answers = results[command["command_id"]]
        first = answers[0]
        assert first["status"] in ("accepted", "duplicate"), first
        positions = {a.get("position") for a in answers}
        assert len(positions) == 1, answers  # every answer tells the one outcome
        assert all(a["status"] in ("accepted", "duplicate") for a in answers), answers
        position = int(first["position"])
        if command["command_id"] in resent:
            continue
        org = command["organization_id"]
        assert position > last_position[org], (command, answers, previous[org])
        last_position[org] = position
        previous[org] = command["command_id"]


def check_events_once_per_position(deployment: ClusterDeployment, commands: list[Command]) -> int:
    """The events stream: entry id = position, each once, in order, chained by
    previous_position; no command's effect twice. Returns the last position."""
    events = deployment.read(deployment.streams.events)
    positions = [body["position"] for _, body in events]
    assert positions == sorted(set(positions))
    assert all(entry_id == f"{body['position']}-1" for entry_id, body in events)
    assert [body["previous_position"] for _, body in events] == [0, *positions[:-1]]
    effects: dict[tuple[str, str], int] = defaultdict(int)
    for _, body in events:
        effects[(body.get("command_id") or "", body["type"])] += 1
    assert max(effects.values()) == 1  # no command had the same effect twice
    renamed = {c["command_id"] for c in commands if c["type"] == "RenameApiKey"}
    assert renamed <= {command_id for command_id, _ in effects}
    return positions[-1]
