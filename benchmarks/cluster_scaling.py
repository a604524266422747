"""Scaling out on this machine: end-to-end commands/s on a Redis Cluster against a single Redis
server, with 1, 2 and 4 partitions (and as many keys-service replicas) against the same-run
single-partition figure, and checks/s through one and two projection replicas.

Every keys-service run starts from a fresh PostgreSQL schema (one event store, shared by the
replicas) and its own streams; the figure is first XADD to last result. Commands go to their
organization's partition (crc32 of the organization id), 50 organizations interleaved.

    .venv/bin/python benchmarks/cluster_scaling.py [--commands 20000] [--postgres URL]
        [--seconds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
from redis.cluster import RedisCluster  # noqa: E402

from benchmarks import check_workload as w  # noqa: E402
from benchmarks import http_load  # noqa: E402
from benchmarks.harness import ROOT, fresh_postgres_schema, wait_http  # noqa: E402
from contracts.partitions import commands_stream_for, partition_streams  # noqa: E402
from services.keys.partitions.leases import lease_key  # noqa: E402
from services.local.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from services.projections import model as rules  # noqa: E402
from services.projections.store import open_store  # noqa: E402
from services.projections.store.batch import full_batch  # noqa: E402
from tests.support.redis_cluster import LocalRedisCluster  # noqa: E402
from tests.support.scenario import many_organizations  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


class Keys:
    """Keys-service replicas on fresh streams and a fresh PostgreSQL schema."""

    def __init__(self, tmp: Path, redis_url: str, cluster: bool, postgres: str, partitions: int):
        self.prefix = f"b{uuid.uuid4().hex[:8]}"
        self.partitions = partitions
        self.store, self.drop = fresh_postgres_schema(postgres)
        self.tmp = tmp
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("APIKEYS_")},
            "REDIS_URL": redis_url,
            "APIKEYS_REDIS_CLUSTER": "true" if cluster else "false",
            "APIKEYS_EVENT_STORE": self.store,
            "APIKEYS_PARTITIONS": str(partitions),
            "APIKEYS_PARTITIONS_KEY": f"{self.prefix}.partitions",
            "APIKEYS_COMMANDS_STREAM": f"{self.prefix}.commands",
            "APIKEYS_RESULTS_STREAM": f"{self.prefix}.results",
            "APIKEYS_EVENTS_STREAM": f"{self.prefix}.events",
            "APIKEYS_DEAD_LETTER_STREAM": f"{self.prefix}.dead-letter",
            "APIKEYS_REPLAY_REQUESTS_STREAM": f"{self.prefix}.replay-requests",
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, replicas: int, client: Any) -> None:
        for r in range(replicas):
            health = f"127.0.0.1:{free_port()}"
            env = {**self.env, "APIKEYS_KEYS_HEALTH_ADDR": health, "APIKEYS_CONSUMER_NAME": f"k{r}"}
            log = (self.tmp / f"{self.prefix}-keys-{r}.log").open("wb")
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "services.keys"],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=log,
                )
            )
            wait_http(f"http://{health}/health")
        streams = partition_streams(self.env["APIKEYS_COMMANDS_STREAM"], self.partitions)
        deadline = time.monotonic() + 60
        while not all(client.exists(lease_key(s)) for s in streams):  # every partition taken
            if time.monotonic() > deadline:
                raise RuntimeError("partitions not all taken within 60 s")
            time.sleep(0.1)

    def stream_of(self, organization_id: str) -> str:
        commands = self.env["APIKEYS_COMMANDS_STREAM"]
        return commands_stream_for(organization_id, commands, self.partitions)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.drop()


def commands_per_second(
    tmp: Path, redis_url: str, cluster: bool, postgres: str, partitions: int, count: int
) -> float:
    client: Any = RedisCluster.from_url(redis_url) if cluster else redis.Redis.from_url(redis_url)
    keys = Keys(tmp, redis_url, cluster, postgres, partitions)
    commands = many_organizations(50, count)
    try:
        keys.start(partitions, client)
        results = keys.env["APIKEYS_RESULTS_STREAM"]
        started = time.perf_counter()
        for start in range(0, len(commands), 1000):
            pipe = client.pipeline(transaction=False)
            for command in commands[start : start + 1000]:
                stream = keys.stream_of(command["organization_id"])
                pipe.xadd(stream, {"__data__": json.dumps(command)})
            pipe.execute()
        deadline = time.monotonic() + 600
        while client.xlen(results) < len(commands):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{results} did not reach {len(commands)}")
            time.sleep(0.005)
        return len(commands) / (time.perf_counter() - started)
    finally:
        keys.stop()
        client.close()


def _load(url: str, paths: list[str], seconds: float, connections: int, out: Any) -> None:
    load = http_load.run(url, paths, seconds, connections, "python")
    out.put((load.requests, load.seconds, load.bad))


def checks_per_second(tmp: Path, redis_url: str, replicas: int, seconds: float) -> float:
    """HTTP checks/s through ``replicas`` projection replicas, each with its own copy of the
    same read model, 50 connections in all from one load process per replica."""
    events, states = w.check_events(10_000, 1_000, 30_000)
    model = rules.fold(events)
    paths = [w.query_path(q) for q in w.queries(states, 20_000)]
    processes, urls = [], []
    for r in range(replicas):
        store = f"sqlite:///{tmp / f'views-{uuid.uuid4().hex[:6]}-{r}.db'}"
        view = open_store(store)
        view.replace(full_batch(model))
        view.close()
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("APIKEYS_")},
            "REDIS_URL": redis_url,
            "APIKEYS_REDIS_CLUSTER": "true",
            "APIKEYS_EVENTS_STREAM": f"b{uuid.uuid4().hex[:8]}.events",
            "APIKEYS_VIEW_STORE": store,
            "APIKEYS_HTTP_ADDR": f"127.0.0.1:{port}",
        }
        log = (tmp / f"projection-{port}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "services.projections"],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            wait_http(f"{url}/health")
            http_load.run(url, paths, 1, 10, "python")  # warm-up
        context = multiprocessing.get_context("spawn")
        out = context.Queue()
        loaders = [
            context.Process(target=_load, args=(u, paths, seconds, 50 // replicas, out))
            for u in urls
        ]
        for loader in loaders:
            loader.start()
        found = [out.get(timeout=seconds + 60) for _ in loaders]
        for loader in loaders:
            loader.join()
        return sum(requests / elapsed for requests, elapsed, _ in found)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--seconds", type=float, default=5.0, help="HTTP load per figure")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="apikeys-cluster-bench-"))
    figures: dict[str, float] = {}
    single = EmbeddedRedis(tmp / "redis", append_only=True).start()
    try:
        figures["single_server_1_partition"] = commands_per_second(
            tmp, single.url, False, args.postgres, 1, args.commands
        )
    finally:
        single.stop()
    with LocalRedisCluster(tmp / "cluster") as cluster:
        for partitions in (1, 2, 4):
            figures[f"cluster_{partitions}_partitions"] = commands_per_second(
                tmp, cluster.url, True, args.postgres, partitions, args.commands
            )
        for replicas in (1, 2):
            figures[f"checks_{replicas}_projection_replicas"] = checks_per_second(
                tmp, cluster.url, replicas, args.seconds
            )
    report(figures, args.commands)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


def report(f: dict[str, float], count: int) -> None:
    base = f["single_server_1_partition"]
    print(f"end-to-end commands/s ({count} commands, 50 organizations, PostgreSQL event store)")
    print(f"  single Redis server, 1 partition, 1 replica  {base:8,.0f}  (baseline)")
    one = f["cluster_1_partitions"]
    for partitions in (1, 2, 4):
        value = f[f"cluster_{partitions}_partitions"]
        print(
            f"  Redis Cluster, {partitions} partition(s), {partitions} replica(s)  {value:8,.0f}"
            f"  ({value / base:.2f} x single server, {value / one:.2f} x 1 partition)"
        )
    checks_1, checks_2 = f["checks_1_projection_replicas"], f["checks_2_projection_replicas"]
    print("HTTP checks/s, 50 connections (python load generator on the same 2 cores)")
    print(f"  1 projection replica   {checks_1:8,.0f}  (baseline)")
    print(f"  2 projection replicas  {checks_2:8,.0f}  ({checks_2 / checks_1:.2f} x)")
    print("targets: the cluster within 0.8 x of a single server at 1 partition; partitions add")
    print("throughput only where cores are free (this machine has 2, shared with the load)")


if __name__ == "__main__":
    main()
