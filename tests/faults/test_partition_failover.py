"""Three keys-service replicas on four partitions: each partition consumed by one replica,
spread over the replicas; the replica holding a partition SIGKILLed in the middle of a burst
of that partition's commands; another takes the partition over, finishes the dead replica's
pending entries first, in order, and goes on. Prints the failover time (the kill -> the first
command sent after it answered)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter, defaultdict
from typing import Any

from contracts.partitions import partition_of
from tests.faults import checks
from tests.faults.deployment import SplitDeployment, Topology
from tests.faults.replicas import Replicas
from tests.support.scenario import create_key, key_command, organization_setup

PARTITIONS = 4
ORGANIZATIONS = 16
FAILOVER_WITHIN_SECONDS = 5.0


def organization_commands(org: str, keys: int) -> list[dict[str, Any]]:
    commands = organization_setup(org)
    for n in range(keys):
        key_id = f"{org}-k{n}"
        commands.append(create_key(org, key_id))
        commands.append(key_command("DisableApiKey", org, key_id))
        commands.append(key_command("EnableApiKey", org, key_id))
    return commands


def order_problems(sent: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[str]:
    """Every command answered exactly once, accepted, and each organization's positions
    increasing in the order its commands were sent."""
    counts = Counter(r["command_id"] for r in results)
    problems = [f"{c}: {n} results" for c, n in counts.items() if n != 1]
    missing = [c["command_id"] for c in sent if c["command_id"] not in counts]
    if missing:
        problems.append(f"{len(missing)} commands unanswered, e.g. {missing[:5]}")
    by_id = {r["command_id"]: r for r in results}
    refused = [r for r in results if r.get("status") != "accepted"]
    if refused:
        problems.append(f"{len(refused)} not accepted, e.g. {refused[:3]}")
    positions: dict[str, list[int]] = defaultdict(list)
    for command in sent:
        result = by_id.get(command["command_id"])
        if result is not None and result.get("position") is not None:
            positions[command["organization_id"]].append(int(result["position"]))
    for org, seen in positions.items():
        if seen != sorted(seen) or len(set(seen)) != len(seen):
            problems.append(f"{org}: positions out of send order {seen[:20]}")
    return problems


def test_a_killed_replicas_partitions_are_taken_over_in_order_within_seconds(
    split_deployment: SplitDeployment,
) -> None:
    deployment = split_deployment
    replicas = Replicas(
        deployment.harness, deployment.redis_url, deployment.stores, deployment.streams, PARTITIONS
    )
    try:
        for name in ("keys-a", "keys-b", "keys-c"):
            replicas.start(name)
        replicas.wait_all_held()
        checks.wait_until(
            lambda: max(Counter(replicas.holders().values()).values()) <= 2,
            20,
            lambda: f"partitions not spread (at most 2 each): {replicas.holders()}",
        )
        orgs = [f"org-{n}" for n in range(ORGANIZATIONS)]
        sent = [c for org in orgs for c in organization_setup(org)]
        for command in sent:
            replicas.send(command)
        replicas.wait_results(len(sent))

        victim_stream = replicas.partition_streams[0]
        victim = replicas.holder(victim_stream)
        assert victim is not None
        in_victim = [o for o in orgs if partition_of(o, PARTITIONS) == 0]
        assert in_victim, "no organization in partition 0"
        burst = [c for org in in_victim for c in organization_commands(org, 30)[7:]]
        others = [
            c for org in orgs if org not in in_victim for c in organization_commands(org, 3)[7:]
        ]
        for command in burst + others:
            replicas.send(command)
        sent += burst + others
        process = replicas.processes[victim]
        os.killpg(process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        marker = key_command("RenameApiKey", in_victim[0], f"{in_victim[0]}-k0", name="after")
        replicas.send(marker)
        sent.append(marker)
        replicas.wait_answered(marker["command_id"], timeout=30)
        failover = time.monotonic() - killed_at
        print(
            f"FAILOVER partition {victim_stream} (held by {victim}, SIGKILL): consumed again "
            f"and {len(burst)} commands of its burst answered within {failover:.2f} s"
        )
        new_holder = replicas.holder(victim_stream)
        results = replicas.wait_results(len(sent))
        topology = Topology(deployment.redis_url, deployment.streams, deployment.stores, "", "")
        target = checks.max_accepted_position(results)
        checks.wait_until(
            lambda: checks.stream_top(replicas.client, deployment.streams.events) >= target,
            30,
            lambda: f"events stream not up to {target}",
        )
        problems = order_problems(sent, results)
        problems += checks.events_stream_problems(
            checks.exported_events(deployment.harness, topology),
            checks.read_stream(replicas.client, deployment.streams.events),
        )
        problems += checks.dead_letter_problems(replicas.client, topology)
        if new_holder in (None, victim):
            problems.append(f"partition {victim_stream} still held by {new_holder}")
        if failover > FAILOVER_WITHIN_SECONDS:
            problems.append(f"failover took {failover:.2f} s (> {FAILOVER_WITHIN_SECONDS} s)")
        checks.assert_no_problems(problems)
    finally:
        replicas.close()
