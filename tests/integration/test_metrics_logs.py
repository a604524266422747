"""GET /metrics on both services, counting what the product did; APIKEYS_LOG_FORMAT=json log
lines with no token, secret hash or hint in any of them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from client import ClientSettings, SyncClient
from contracts.tokens import token_hint, token_sha256
from services.local.embedded_redis import EmbeddedRedis, free_port
from tests.faults.deployment import wait_healthy
from tests.faults.processes import ManagedProcess, ProcessHarness


@pytest.fixture
def services(
    redis_server: EmbeddedRedis, tmp_path: Path, unique: str
) -> Iterator[tuple[ClientSettings, str, list[ManagedProcess]]]:
    harness = ProcessHarness(tmp_path, marker=f"metrics-{unique}")
    streams = {
        "APIKEYS_COMMANDS_STREAM": f"m{unique}.commands",
        "APIKEYS_RESULTS_STREAM": f"m{unique}.results",
        "APIKEYS_EVENTS_STREAM": f"m{unique}.events",
        "APIKEYS_DEAD_LETTER_STREAM": f"m{unique}.dead-letter",
    }
    keys_addr, http_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    common = {"REDIS_URL": redis_server.url, "APIKEYS_LOG_FORMAT": "json", **streams}
    try:
        keys = harness.python(
            "keys",
            ["services.keys"],
            harness.env(
                **common,
                APIKEYS_EVENT_STORE=f"sqlite:///{tmp_path / 'events.db'}",
                APIKEYS_KEYS_HEALTH_ADDR=keys_addr,
            ),
        )
        wait_healthy(keys, f"http://{keys_addr}/health")
        projections = harness.python(
            "projections",
            ["services.projections"],
            harness.env(
                **common,
                APIKEYS_VIEW_STORE=f"sqlite:///{tmp_path / 'views.db'}",
                APIKEYS_HTTP_ADDR=http_addr,
            ),
        )
        wait_healthy(projections, f"http://{http_addr}/health")
        settings = ClientSettings(
            redis_url=redis_server.url,
            projection_url=f"http://{http_addr}",
            commands_stream=streams["APIKEYS_COMMANDS_STREAM"],
            results_stream=streams["APIKEYS_RESULTS_STREAM"],
            events_stream=streams["APIKEYS_EVENTS_STREAM"],
        )
        yield settings, f"http://{keys_addr}", [keys, projections]
    finally:
        assert not harness.kill_everything()


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_commands_checks_and_verifies(services) -> None:  # type: ignore[no-untyped-def]
    settings, keys_url, processes = services
    organization = f"org-{uuid.uuid4().hex[:8]}"
    with SyncClient(settings) as client:
        client.enable_api_module(organization, raise_on_reject=True)
        client.grant_api_administrator(organization, "alice")
        client.define_location(organization, "plant-7", "Plant 7")
        key = client.create_key(organization, "alice", "K", ["plant-7"], raise_on_reject=True)
        assert client.rename_key(organization, "alice", "nope", "x").status == "rejected"
        client.check(key.key_id, "view", "plant-7", min_position=key.result.position)
        assert client.verify(key.token).valid
        assert not client.verify("not-a-token-of-ours").valid
    keys = samples(keys_url)
    assert keys[("apikeys_commands_total", (("status", "accepted"), ("type", "CreateApiKey")))] == 1
    assert keys[("apikeys_commands_total", (("status", "rejected"), ("type", "RenameApiKey")))] == 1
    assert keys[("apikeys_batch_size_count", ())] >= 1
    assert ("apikeys_relay_lag_positions", ()) in keys
    projection = samples(settings.projection_url)
    assert projection[("apikeys_checks_total", (("outcome", "not_granted"),))] == 1
    assert projection[("apikeys_verifies_total", (("code", "VALID"),))] == 1
    assert projection[("apikeys_verifies_total", (("code", "NOT_FOUND"),))] == 1
    assert projection[("apikeys_verify_seconds_count", ())] == 2
    assert projection[("apikeys_projection_position", ())] >= key.result.position
    for process in processes:
        text = process.log_path.read_text()
        for secret in (key.token, token_sha256(key.token), token_hint(key.token)):
            assert secret not in text
        logged = [line for line in text.splitlines() if line.startswith("{")]
        for line in logged:
            assert {"time", "level", "logger", "message"} <= set(json.loads(line))
