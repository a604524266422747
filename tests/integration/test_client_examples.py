"""examples/ run as processes against the real product: the publisher, the subscriber (killed
and restarted without a gap or a repeat), the gateway."""

from __future__ import annotations

import json
import signal
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis

from client import SyncClient
from services.local.embedded_redis import free_port
from tests.faults.processes import ProcessHarness
from tests.integration.conftest import Product

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_env(product: Product, harness: ProcessHarness) -> dict[str, str]:
    topology = product.topology
    return harness.env(
        REDIS_URL=topology.redis_url,
        APIKEYS_PROJECTION_URL=topology.projections_url,
        APIKEYS_COMMANDS_STREAM=topology.streams.commands,
        APIKEYS_RESULTS_STREAM=topology.streams.results,
        APIKEYS_EVENTS_STREAM=topology.streams.events,
    )


def harness_for(product: Product, tmp_path: Path) -> ProcessHarness:
    return ProcessHarness(tmp_path, marker=f"example-{uuid.uuid4().hex[:8]}")


def wait_for(condition, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not met within {timeout} s")


def test_the_publisher_example_creates_a_key_and_reads_its_permission(
    product: Product, tmp_path: Path
) -> None:
    harness = harness_for(product, tmp_path)
    try:
        process = harness.start(
            "publisher",
            [sys.executable, str(EXAMPLES / "publisher.py"), f"org-{uuid.uuid4().hex[:8]}"],
            example_env(product, harness),
        )
        assert process.popen.wait(timeout=60) == 0, process.describe()
        printed = json.loads(process.log_path.read_text().strip().splitlines()[-1])
        assert printed["allowed"] is True and printed["token"].startswith("apk_")
    finally:
        assert not harness.kill_everything()


def read_lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_subscriber_example_resumes_after_sigkill_without_gap_or_repeat(
    product: Product, tmp_path: Path
) -> None:
    harness = harness_for(product, tmp_path)
    output = tmp_path / "events.jsonl"
    command = [sys.executable, str(EXAMPLES / "subscriber.py"), str(output)]
    env = example_env(product, harness)
    try:
        with SyncClient(product.settings()) as client:
            organization = f"org-{uuid.uuid4().hex[:8]}"
            client.enable_api_module(organization, raise_on_reject=True)
            first = harness.start("subscriber-1", command, env)
            for n in range(30):
                client.define_location(organization, f"a-{n}", f"A {n}")
            events = product.topology.streams.events
            wait_for(lambda: len(read_lines(output)) >= 10)
            first.popen.send_signal(signal.SIGKILL)
            first.popen.wait(timeout=10)
            for n in range(30):
                client.define_location(organization, f"b-{n}", f"B {n}")
        harness.start("subscriber-2", command, env)
        total = redis.Redis.from_url(product.topology.redis_url).xlen(events)
        lines = wait_for(lambda: (found := read_lines(output)) and len(found) >= total and found)
        positions = [int(line["position"]) for line in lines]  # type: ignore[call-overload]
        assert positions == sorted(set(positions)) and len(positions) == total
        chain = [line["previous_position"] for line in lines[1:]]
        assert chain == positions[:-1]
    finally:
        assert not harness.kill_everything()


def test_the_gateway_example_protects_its_routes(product: Product, tmp_path: Path) -> None:
    harness = harness_for(product, tmp_path)
    port = free_port()
    try:
        with SyncClient(product.settings()) as client:
            organization = f"org-{uuid.uuid4().hex[:8]}"
            client.enable_api_module(organization, raise_on_reject=True)
            client.grant_api_administrator(organization, "alice")
            client.define_location(organization, "plant-7", "Plant 7")
            client.define_location(organization, "plant-8", "Plant 8")
            client.define_role(organization, "exporter", "E", [("view_private", "location_only")])
            key = client.create_key(
                organization, "alice", "G", ["plant-7"], ["exporter"], raise_on_reject=True
            )
            client.check(key.key_id, "x", "plant-7", min_position=key.result.position)
        harness.start(
            "gateway",
            [sys.executable, str(EXAMPLES / "gateway.py"), "--port", str(port)],
            example_env(product, harness),
        )
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{base}/whoami"))
        auth = {"Authorization": f"Bearer {key.token}"}
        with httpx.Client(base_url=base) as http:
            assert http.get("/whoami").status_code == 401
            assert http.get("/whoami", headers=auth).json()["key_id"] == key.key_id
            assert http.get("/whoami", auth=("api", key.token)).status_code == 200
            assert http.get("/plants/plant-7/report", headers=auth).status_code == 200
            assert http.get("/plants/plant-8/report", headers=auth).status_code == 403
    finally:
        assert not harness.kill_everything()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 401
    except httpx.TransportError:
        return False


def test_the_readme_first_screen_example_runs(product: Product, tmp_path: Path) -> None:
    """README's first Python block, against this product (its Redis and projection)."""
    readme = (EXAMPLES.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) < 10
    organization = f"org-{uuid.uuid4().hex[:8]}"
    code = code.replace('"acme"', repr(organization)).replace(
        'redis_url="redis://127.0.0.1:6380/0"', "settings"
    )
    harness = harness_for(product, tmp_path)
    script = tmp_path / "readme_example.py"
    topology = product.topology
    script.write_text(
        "from client import ClientSettings\n"
        f"settings = ClientSettings(redis_url={topology.redis_url!r}, "
        f"projection_url={topology.projections_url!r}, "
        f"commands_stream={topology.streams.commands!r}, "
        f"results_stream={topology.streams.results!r})\n" + code
    )
    try:
        process = harness.start("readme", [sys.executable, str(script)], harness.env())
        assert process.popen.wait(timeout=60) == 0, process.describe()
        output = process.log_path.read_text()
        assert "allowed=True" in output and "apk_" in output
    finally:
        assert not harness.kill_everything()
