"""A replica paused past its lease (SIGSTOP) with a batch in hand: another replica takes the
partition over and stores that batch's commands; the paused one, resumed (SIGCONT), has its
late batch refused by the event store (an older epoch) and stops consuming the partition.
Every command has one result and one effect.

The paused replica reaches PostgreSQL through the test's proxy, held while its batch is in
flight, so the batch surely reaches the store after the takeover (a real network can deliver
a request that late)."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable

import pytest

from tests.faults import checks
from tests.faults.deployment import SplitDeployment, Topology
from tests.faults.proxy import TcpProxy
from tests.faults.replicas import LEASE_MS, Replicas
from tests.support.scenario import create_key, organization_setup

REFUSED = "is no longer current"  # in the paused replica's log when its batch is refused


@pytest.mark.parametrize(
    "store", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_paused_replicas_late_batch_is_refused_after_a_takeover(
    split_deployment: SplitDeployment, tcp_proxy: Callable[[str, int], TcpProxy]
) -> None:
    deployment = split_deployment
    proxy = tcp_proxy(*deployment.stores.postgres_address())
    replicas = Replicas(
        deployment.harness, deployment.redis_url, deployment.stores, deployment.streams, 1
    )
    (stream,) = replicas.partition_streams
    client = replicas.client
    try:
        paused = replicas.start(
            "keys-a", event_store=deployment.stores.routed_through(proxy.port).event_store
        )
        replicas.wait_all_held(among={"keys-a"})
        replicas.start("keys-b")
        sent = organization_setup("org-f")
        for command in sent:
            replicas.send(command)
        replicas.wait_results(len(sent))

        proxy.hold()  # keys-a's next batch waits in the proxy
        late = [create_key("org-f", f"late-{n}") for n in range(5)]
        for command in late:
            replicas.send(command)
        sent += late
        checks.wait_until(
            lambda: client.xpending(stream, "apikeys-keys")["pending"] >= 1,
            20,
            lambda: f"keys-a did not take the batch: {client.xpending(stream, 'apikeys-keys')}",
        )
        paused.popen.send_signal(signal.SIGSTOP)
        try:
            checks.wait_until(
                lambda: replicas.holder(stream) == "keys-b",
                LEASE_MS / 1000 + 10,
                lambda: f"no takeover: {replicas.holders()}",
            )
            results = replicas.wait_results(len(sent), timeout=30)
        finally:
            paused.popen.send_signal(signal.SIGCONT)
            proxy.release()
        checks.wait_until(
            lambda: REFUSED in paused.log_path.read_text(errors="replace"),
            20,
            lambda: f"keys-a's late batch was not refused:\n{paused.describe()}",
        )
        after = [create_key("org-f", f"after-{n}") for n in range(5)]
        for command in after:
            replicas.send(command)
        sent += after
        results = replicas.wait_results(len(sent))

        problems = []
        counts = Counter(r["command_id"] for r in results)
        problems += [f"{c}: {n} results" for c, n in counts.items() if n != 1]
        problems += [
            f"{r['command_id']}: {r['status']} {r.get('error')}"
            for r in results
            if r["status"] != "accepted"
        ]
        if len(counts) != len(sent):
            problems.append(f"{len(counts)} commands answered of {len(sent)}")
        if not paused.alive():
            problems.append(f"keys-a exited instead of stopping the partition: {paused.describe()}")
        if replicas.holder(stream) != "keys-b":
            problems.append(f"the partition moved again: {replicas.holders()}")
        topology = Topology(deployment.redis_url, deployment.streams, deployment.stores, "", "")
        target = checks.max_accepted_position(results)
        checks.wait_until(
            lambda: checks.stream_top(client, deployment.streams.events) >= target,
            30,
            lambda: f"events stream not up to {target}",
        )
        problems += checks.events_stream_problems(
            checks.exported_events(deployment.harness, topology),
            checks.read_stream(client, deployment.streams.events),
        )
        checks.assert_no_problems(problems)
    finally:
        replicas.close()
