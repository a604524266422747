"""What must hold after every fault, and the waits that come before the checks.

Each ``*_problems`` function returns what is wrong (empty when the invariant holds), so a test
reports every broken invariant at once through ``assert_no_problems``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import redis

from tests.faults import http_get
from tests.faults.deployment import Topology
from tests.faults.health import PROBE_NAME, HealthSampler, Sample
from tests.faults.load import ACCEPTED, Plan, Sent
from tests.faults.processes import ProcessHarness

SHOWN = 8  # how many examples of a broken invariant a message lists
Entry = tuple[str, dict[str, Any]]


# ---- reading the system -------------------------------------------------------------------


def read_stream(client: redis.Redis, stream: str) -> list[Entry]:
    entries: Any = client.xrange(stream)
    return [(entry_id.decode(), json.loads(fields[b"__data__"])) for entry_id, fields in entries]


def stream_top(client: redis.Redis, stream: str) -> int:
    last: Any = client.xrevrange(stream, count=1)
    return int(last[0][0].split(b"-")[0]) if last else 0


def projection_position(topology: Topology) -> int | None:
    answer = http_get.get(f"{topology.projections_url}/health", timeout=2.0)
    return int(answer.body["position"]) if answer.status == 200 else None


def max_accepted_position(results: list[dict[str, Any]]) -> int:
    return max((int(r["position"]) for r in results if r.get("status") == ACCEPTED), default=0)


def exported_events(harness: ProcessHarness, topology: Topology) -> list[dict[str, Any]]:
    done = harness.run_cli(["export"], harness.env(**topology.cli_env()))
    if done.returncode != 0:
        raise AssertionError(f"apikeys export failed ({done.returncode}): {done.stderr[-2000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


# ---- waiting ------------------------------------------------------------------------------


def wait_until(
    condition: Callable[[], bool], timeout: float, state: Callable[[], str], interval: float = 0.05
) -> None:
    """Poll ``condition`` (a Redis error counts as "not yet") until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(state())
        time.sleep(interval)


def _or_error(read: Callable[[], object]) -> object:
    try:
        return read()
    except redis.RedisError as error:
        return f"unreadable ({error})"


def progress(client: redis.Redis, topology: Topology, harness: ProcessHarness | None) -> str:
    streams = topology.streams
    text = (
        f"results {_or_error(lambda: client.xlen(streams.results))}, "
        f"commands {_or_error(lambda: client.xlen(streams.commands))}, "
        f"events top {_or_error(lambda: stream_top(client, streams.events))}, "
        f"projection at {projection_position(topology)}, "
        f"dead letters {_or_error(lambda: client.xlen(streams.dead_letter))}"
    )
    if harness is not None:
        text += "".join(f"\n--- {p.describe()}" for p in harness.started if p.name != PROBE_NAME)
    return text


def wait_caught_up(
    client: redis.Redis,
    topology: Topology,
    answered: int,
    timeout: float,
    harness: ProcessHarness | None = None,
) -> None:
    """Until ``answered`` results are in, the events of every accepted one are on the events
    stream, and the projection has applied them."""
    streams = topology.streams
    deadline = time.monotonic() + timeout
    stage = f"{answered} results"

    def state() -> str:
        return f"not within {timeout:.0f} s: {stage}; now " + progress(client, topology, harness)

    wait_until(lambda: client.xlen(streams.results) >= answered, timeout, state)
    results = [body for _, body in read_stream(client, streams.results)]
    target = max_accepted_position(results)
    stage = f"events stream up to position {target} (the last accepted result's)"
    wait_until(
        lambda: stream_top(client, streams.events) >= target, deadline - time.monotonic(), state
    )
    stage = f"projection at position {target}"
    wait_until(
        lambda: (projection_position(topology) or 0) >= target, deadline - time.monotonic(), state
    )


def measure_recovery(
    client: redis.Redis,
    topology: Topology,
    fault_end: float,
    answered: int,
    timeout: float,
    harness: ProcessHarness | None = None,
) -> float:
    """Seconds from ``fault_end`` until ``answered`` commands (those sent by then, and the
    first one after) are answered, published and projected."""
    wait_caught_up(client, topology, answered, fault_end + timeout - time.monotonic(), harness)
    return time.monotonic() - fault_end


# ---- (a) one result per command, the right one --------------------------------------------


def result_problems(sent: list[Sent], results: list[dict[str, Any]]) -> list[str]:
    expected: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for item in sent:
        expected[item.planned.command_id].append((item.planned.status, item.planned.error_code))
    actual: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for result in results:
        code = (result.get("error") or {}).get("code") if result.get("status") != ACCEPTED else None
        actual[str(result.get("command_id"))].append((str(result.get("status")), code))
    problems = []
    if len(results) != len(sent):
        problems.append(f"{len(results)} results for {len(sent)} commands sent")
    wrong, reordered = [], []
    for command_id, want in expected.items():
        got = actual.get(command_id, [])
        if got == want:
            continue
        if sorted(got, key=str) == sorted(want, key=str):
            reordered.append(f"{command_id}: sent {want}, answered {got}")
        else:
            wrong.append(f"{command_id}: expected {want}, got {got}")
    unknown = [command_id for command_id in actual if command_id not in expected]
    if wrong:
        problems.append(
            f"{len(wrong)} commands without exactly their expected result(s), e.g. {wrong[:SHOWN]}"
        )
    if reordered:
        problems.append(
            f"{len(reordered)} resent command ids answered out of send order "
            f"(the resend's result before the original's), e.g. {reordered[:SHOWN]}"
        )
    if unknown:
        problems.append(f"results for commands never sent: {unknown[:SHOWN]}")
    return problems


# ---- (b) accepted positions increase in command stream order --------------------------------


def position_order_problems(sent: list[Sent], results: list[dict[str, Any]]) -> list[str]:
    order: dict[str, int] = {}
    for index, item in enumerate(sent):
        order.setdefault(item.planned.command_id, index)
    accepted = sorted(
        (order[r["command_id"]], int(r["position"]), r["command_id"])
        for r in results
        if r.get("status") == ACCEPTED and r.get("command_id") in order
    )
    out_of_order = [
        f"{before[2]}@{before[1]} then {after[2]}@{after[1]}"
        for before, after in zip(accepted, accepted[1:], strict=False)
        if after[1] <= before[1]
    ]
    if not out_of_order:
        return []
    return [
        f"{len(out_of_order)} accepted positions not increasing in command order, "
        f"e.g. {out_of_order[:SHOWN]}"
    ]


# ---- (c) the events stream holds every stored event once, in order --------------------------


def events_stream_problems(exported: list[dict[str, Any]], stream: list[Entry]) -> list[str]:
    problems = []
    bad_ids = [entry_id for entry_id, body in stream if entry_id != f"{body.get('position')}-1"]
    if bad_ids:
        problems.append(f"{len(bad_ids)} entries whose id is not <position>-1: {bad_ids[:SHOWN]}")
    stored = [(e["position"], e["type"]) for e in exported]
    published = [(body.get("position"), body.get("type")) for _, body in stream]
    if stored != published:
        stored_set, published_set = set(stored), set(published)
        missing = sorted(stored_set - published_set)
        extra = sorted(published_set - stored_set)
        repeated = len(published) - len(published_set)
        problems.append(
            f"events stream differs from the store: {len(stored)} stored, {len(published)} "
            f"published, missing {len(missing)} {missing[:SHOWN]}, not stored {len(extra)} "
            f"{extra[:SHOWN]}, repeated {repeated}, in order {published == sorted(published)}"
        )
        return problems
    differing = [e["position"] for e, (_, body) in zip(exported, stream, strict=True) if e != body]
    if differing:
        problems.append(
            f"{len(differing)} published events differ from the stored ones at "
            f"positions {differing[:SHOWN]}"
        )
    return problems


def dead_letter_problems(client: redis.Redis, topology: Topology) -> list[str]:
    dead = read_stream(client, topology.streams.dead_letter)
    if not dead:
        return []
    return [
        f"{len(dead)} dead letters (every command sent is valid), e.g. "
        f"{[body.get('reason') for _, body in dead[:3]]}"
    ]


# ---- (d) the projection equals a rebuild and follows the stream ---------------------------


def projection_problems(
    client: redis.Redis, topology: Topology, harness: ProcessHarness, plan: Plan
) -> list[str]:
    problems = []
    top = stream_top(client, topology.streams.events)
    position = projection_position(topology)
    if position != top:
        problems.append(f"projection /health position {position} != events stream top {top}")
    verify = harness.run_cli(["verify-projections"], harness.env(**topology.cli_env()))
    if verify.returncode != 0:
        problems.append(
            f"verify-projections exited {verify.returncode}: "
            f"{(verify.stdout + verify.stderr)[-1500:]}"
        )
    for key_id in plan.toggle_keys:
        answer = http_get.get(f"{topology.projections_url}/v1/keys/{key_id}/permissions", 5.0)
        status = answer.body.get("status") if isinstance(answer.body, dict) else None
        if answer.status != 200 or status != plan.final_status(key_id):
            problems.append(
                f"key {key_id}: projection says {answer.status} {status!r}, "
                f"the last command sent makes it {plan.final_status(key_id)!r}"
            )
    return problems


def invariant_problems(
    client: redis.Redis, topology: Topology, harness: ProcessHarness, plan: Plan, sent: list[Sent]
) -> list[str]:
    """(a) to (d) over the whole run, once everything is answered and published."""
    results = [body for _, body in read_stream(client, topology.streams.results)]
    return [
        *result_problems(sent, results),
        *position_order_problems(sent, results),
        *dead_letter_problems(client, topology),
        *events_stream_problems(
            exported_events(harness, topology), read_stream(client, topology.streams.events)
        ),
        *projection_problems(client, topology, harness, plan),
    ]


# ---- (e) health and readiness during the fault --------------------------------------------


def health_problems(
    sampler: HealthSampler,
    service: str,
    max_latency: float = 0.1,
    start: float = 0.0,
    end: float = float("inf"),
) -> list[str]:
    samples = sampler.of(service, "/health", start, end)
    if not samples:
        return [f"{service} /health was never sampled"]
    bad = [s for s in samples if s.status != 200 or s.latency > max_latency]
    if not bad:
        return []
    examples = [f"{s.status or s.error[:60]} in {s.latency * 1000:.0f} ms" for s in bad[:SHOWN]]
    control = sampler.of("control", "/health", start, end)
    return [
        f"{service} /health: {len(bad)} of {len(samples)} answers not 200 within "
        f"{max_latency * 1000:.0f} ms ({spread(samples)}; the probe's own control server: "
        f"{spread(control)}), e.g. {examples}"
    ]


def spread(samples: list[Sample]) -> str:
    if not samples:
        return "no samples"
    latencies = sorted(s.latency * 1000 for s in samples)
    return (
        f"p50 {latencies[len(latencies) // 2]:.0f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)]:.0f} ms, max {latencies[-1]:.0f} ms"
    )


def came_back_problems(
    sampler: HealthSampler, service: str, path: str, after: float, within: float
) -> list[str]:
    """``path`` answered 200 at some point within ``within`` s after ``after``."""
    samples = sampler.of(service, path, after, after + within)
    if any(s.status == 200 for s in samples):
        return []
    seen = sorted({str(s.status or s.error[:40]) for s in samples})
    return [
        f"{service} {path} not 200 within {within:.0f} s after the fault "
        f"({len(samples)} samples: {seen})"
    ]


def readiness_problems(
    sampler: HealthSampler,
    service: str,
    fault_start: float,
    fault_end: float,
    within: float,
    detection_slack: float = 0.5,
) -> list[str]:
    """``/ready`` answered 503 during the fault and 200 within ``within`` s after it."""
    problems = []
    during = sampler.of(service, "/ready", fault_start, fault_end + detection_slack)
    if not any(s.status == 503 for s in during):
        seen = sorted({str(s.status or s.error[:40]) for s in during})
        problems.append(
            f"{service} /ready never answered 503 during the fault ({len(during)} samples: {seen})"
        )
    return problems + came_back_problems(sampler, service, "/ready", fault_end, within)


def stored_position_problems(topology: Topology) -> list[str]:
    """The projection's stored position (its view store) equals its memory's (/health)."""
    from services.projections.store import open_store

    store = open_store(topology.stores.view_store)
    try:
        stored = store.position()
    finally:
        store.close()
    memory = projection_position(topology)
    if stored == memory:
        return []
    return [f"projection stored position {stored} != its /health position {memory}"]


def assert_no_problems(problems: list[str]) -> None:
    if problems:
        raise AssertionError("\n".join(["broken invariants:", *problems]))
