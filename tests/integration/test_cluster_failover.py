"""The product on a six-node Redis Cluster with PostgreSQL, services as processes: commands
applied and answered, events published exactly once per position, projection replicas equal to
a rebuild; through a SIGKILL of the keys service and of the Redis primary holding the commands
stream (its replica promoted). Commands lost with a primary's unreplicated tail are resent
with the same command_id, as a client would: they get their first outcome or ``duplicate``."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.deployment import Streams
from tests.faults.processes import ProcessHarness
from tests.integration.cluster_deployment import ClusterDeployment, Command, wait_until
from tests.support.redis_cluster import LocalRedisCluster
from tests.support.scenario import create_key, key_command, organization_setup

ORGANIZATIONS = 50
COMMANDS = int(__import__("os").environ.get("CLUSTER_TEST_COMMANDS", "20000"))
KEYS_PER_ORGANIZATION = 40
QUIET_SECONDS = 10.0  # no new result for this long: what is missing was lost, resend it


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
        harness, private_redis_cluster, postgres_url, Streams.unique(f"c{unique}")
    )
    yield made
    made.close()


def workload(organizations: int, total: int) -> list[Command]:
    """Each organization's directory commands, then keys created and renamed; interleaved
    across organizations, each organization's commands in their own order."""
    per_org = total // organizations
    plans = []
    for o in range(organizations):
        org = f"org-{o}"
        plan = organization_setup(org)
        plan += [create_key(org, f"{org}-k{k}") for k in range(KEYS_PER_ORGANIZATION)]
        for n in range(per_org - len(plan)):
            key = f"{org}-k{n % KEYS_PER_ORGANIZATION}"
            plan.append(key_command("RenameApiKey", org, key, name=f"name {n}"))
        plans.append(plan)
    return [plan[i] for i in range(per_org) for plan in plans]


def test_commands_survive_a_keys_service_kill_and_a_redis_primary_failover(
    deployment: ClusterDeployment, tmp_path: Path
) -> None:
    streams = deployment.streams
    commands = workload(ORGANIZATIONS, COMMANDS)
    keys = deployment.start_keys("keys-a")
    for name in ("projection-1", "projection-2"):
        deployment.start_projection(name, f"sqlite:///{tmp_path / name}.db")

    def results_count() -> int:
        return int(deployment.client.xlen(streams.results))

    sender = threading.Thread(
        target=deployment.send, args=(commands, lambda _: streams.commands), daemon=True
    )
    sender.start()

    # the keys service dies in the middle; its replacement (same consumer name) first
    # finishes what the dead one was given, then goes on
    wait_until(lambda: results_count() >= COMMANDS // 4, 120, "a quarter answered")
    keys.popen.kill()
    killed_at, answered_at_kill = time.monotonic(), results_count()
    deployment.start_keys("keys-a")
    wait_until(lambda: results_count() > answered_at_kill, 60, "answers after the kill")
    takeover = time.monotonic() - killed_at

    # the Redis primary holding the commands stream dies; its replica takes over
    wait_until(lambda: results_count() >= COMMANDS // 2, 120, "half answered")
    promotion = deployment.cluster.kill_primary_of(streams.commands)
    sender.join(timeout=120)
    assert not sender.is_alive()

    results = settle(deployment, commands)
    print(
        f"\nfailover times: keys service SIGKILL to first answer of its replacement "
        f"{takeover:.2f} s (includes the process start); Redis primary SIGKILL to the "
        f"cluster serving the slot again {promotion:.2f} s"
    )
    check_each_command_once_in_order(commands, results)
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


def events_top(deployment: ClusterDeployment) -> int:
    last: Any = deployment.client.xrevrange(deployment.streams.events, count=1)
    return int(last[0][0].split(b"-")[0]) if last else 0


def settle(deployment: ClusterDeployment, commands: list[Command]) -> dict[str, list[Any]]:
    """Wait for every command's result; resend (same command_id) those still without one
    once nothing new has been answered for a while: they were lost with a primary's tail."""
    resent: set[str] = set()
    deadline = time.monotonic() + 150
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
            deployment.send(missing, lambda _: deployment.streams.commands)
            resent.update(c["command_id"] for c in missing)
            quiet_since = time.monotonic()
        time.sleep(0.5)
    raise AssertionError(f"{len(missing)} commands never answered, e.g. {missing[:3]}")


def check_each_command_once_in_order(
    commands: list[Command], results: dict[str, list[dict[str, Any]]]
) -> None:
    """One outcome per command (repeats only as ``duplicate`` with the same position), every
    command accepted, and each organization's commands applied in the order sent."""
    last_position: dict[str, int] = defaultdict(int)
    for command in commands:
        answers = results[command["command_id"]]
        first = answers[0]
        assert first["status"] in ("accepted", "duplicate"), first
        positions = {a.get("position") for a in answers}
        assert len(positions) == 1, answers  # every answer tells the one outcome
        assert all(a["status"] in ("accepted", "duplicate") for a in answers), answers
        position = int(first["position"])
        org = command["organization_id"]
        assert position > last_position[org], (command, answers)
        last_position[org] = position


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
