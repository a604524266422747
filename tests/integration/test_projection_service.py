"""The projection service as its own process: real Redis, views on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis

from contracts import events as ev
from contracts.common import SCOPES
from contracts.tokens import new_token, token_sha256
from services.local.embedded_redis import free_port
from services.projections import model as rules
from services.projections.feed.rebuild import rebuild
from services.projections.model.answers import permissions_answer
from services.projections.runtime.settings import Settings
from services.projections.store import open_store
from services.projections.store.batch import Batch
from tests.support.projection_builders import EventLog, stream_fields
from tests.support.stores import STORES

ROOT = Path(__file__).resolve().parents[2]
KEYS = [f"key-{n}" for n in range(30)]
LOCATIONS = [f"loc-{n}" for n in range(12)]


@pytest.fixture(params=STORES)
def settings(request, redis_url: str, unique: str, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "postgres":
        store_url = request.getfixturevalue("postgres_dsn")
    else:
        store_url = f"sqlite:///{tmp_path / 'views.db'}"
    made = Settings(
        redis_url=redis_url,
        events_stream=f"test.{unique}.events",
        view_store=store_url,
        view_table_prefix=f"apikeys_view_t{unique}_",
        http_port=free_port(),
        min_position_wait=15.0,
        read_count=20,  # small batches, so a kill lands mid-stream
    )
    yield made
    for prefix in (made.view_table_prefix, made.view_table_prefix + "rebuilt_"):
        store = open_store(made.view_store, prefix)
        store.drop()
        store.close()


def environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "APIKEYS_EVENTS_STREAM": settings.events_stream,
        "APIKEYS_VIEW_STORE": settings.view_store,
        "APIKEYS_VIEW_TABLE_PREFIX": settings.view_table_prefix,
        "APIKEYS_HTTP_ADDR": settings.http_addr,
        "APIKEYS_MIN_POSITION_WAIT": str(settings.min_position_wait),
        "APIKEYS_READ_COUNT": str(settings.read_count),
    }


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except httpx.TransportError:
            result = None
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or condition}")


class Service:
    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://{settings.http_addr}", timeout=30.0)

    def start(self) -> Service:
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.projections"],
                cwd=ROOT,
                env=environment(self.settings),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        wait_until(self.healthy, what="the service to answer /health")
        return self

    def healthy(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log_path.read_text()
        return self.http.get("/health").status_code == 200

    def position(self) -> int:
        return int(self.http.get("/health").json()["position"])

    def stop(self, signum: int) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        code = self.process.wait(timeout=15)
        self.process = None
        return code


@pytest.fixture
def service(settings: Settings, tmp_path: Path) -> Iterator[Service]:
    running = Service(settings, tmp_path / "service.log")
    yield running
    if running.process is not None:
        running.process.kill()
        running.process.wait()
    running.http.close()


def history(tokens: dict[str, str]) -> EventLog:
    """A deterministic busy organization: a tree, roles, keys, then many key and org changes."""
    rng = random.Random(7)
    log = EventLog("org-int", step=2).setup()
    for n, location in enumerate(LOCATIONS):
        log.location(location, LOCATIONS[rng.randrange(n)] if n else None)
    for role in ("r1", "r2", "r3"):
        log.role(role, *((p, rng.choice(SCOPES)) for p in rng.sample(["view", "edit", "admin"], 2)))
    for key in KEYS:
        tokens[key] = new_token()
        locations = rng.sample(LOCATIONS, 2)
        log.create_key(
            key,
            locations,
            rng.sample(["r1", "r2", "r3"], 2),
            secret_sha256=token_sha256(tokens[key]),
        )
    far = datetime.now(UTC) + timedelta(days=365)
    for _ in range(600):
        key, choice = rng.choice(KEYS), rng.random()
        state = log.keys[key]
        if choice < 0.4:
            log.toggle(
                key, rng.choice(state.role_ids), rng.choice(state.location_ids), rng.random() < 0.5
            )
        elif choice < 0.6:
            log.key(
                ev.ApiKeyEnabled if rng.random() < 0.7 else ev.ApiKeyDisabled,
                key,
                enabled=rng.random() < 0.7,
                expires_at=rng.choice([None, far]),
            )
        elif choice < 0.7:
            old, tokens[key] = tokens[key], new_token()
            log.key(
                ev.KeySecretRotated,
                key,
                secret_sha256=token_sha256(tokens[key]),
                previous_secret_sha256=token_sha256(old),
                previous_secret_valid_until=far,
            )
        elif choice < 0.85:
            n = rng.randrange(1, len(LOCATIONS))
            log.move(LOCATIONS[n], LOCATIONS[rng.randrange(n)])
        else:
            log.role(
                rng.choice(["r1", "r2", "r3"]),
                (rng.choice(["view", "edit"]), rng.choice(SCOPES)),
                changed=True,
            )
    return log


def publish(settings: Settings, events: list[ev.AnyEvent]) -> None:
    with redis.Redis.from_url(settings.redis_url) as client:
        pipe = client.pipeline(transaction=False)
        for event in events:
            entry_id, fields = stream_fields(event)
            pipe.xadd(settings.events_stream, fields, id=entry_id)
        pipe.execute()


def answers_from(service: Service, position: int) -> dict[str, Any]:
    answers = {}
    for key in KEYS:
        response = service.http.get(f"/v1/keys/{key}/permissions?min_position={position}")
        assert response.status_code == 200, response.text
        answers[key] = response.json()
    return answers


def answers_of(model: rules.ReadModel) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {key: msgspec.to_builtins(permissions_answer(model, key, now)) for key in KEYS}


def test_restart_after_sigkill_answers_like_a_rebuild(settings: Settings, service: Service):
    tokens: dict[str, str] = {}
    events = history(tokens).events
    half = len(events) // 2
    publish(settings, events[:half])
    service.start()
    check = "/v1/check?key_id=key-0&permission=view&location_id=loc-0"
    response = service.http.get(f"{check}&min_position={events[half - 1].position}")
    assert response.status_code == 200
    assert response.json()["position"] == events[half - 1].position

    publish(settings, events[half:])
    wait_until(lambda: service.position() > events[half - 1].position, what="consumption")
    assert service.stop(signal.SIGKILL) == -signal.SIGKILL

    service.start()
    final = events[-1].position
    live_answers = answers_from(service, final)
    body = {"token": tokens["key-3"], "permission": "view", "location_id": "loc-0"}
    verified = service.http.post(f"/v1/verify?min_position={final}", json=body).json()
    assert (verified["key_id"], verified["position"]) == ("key-3", final)
    wait_until(lambda: service.http.get("/ready").status_code == 200, what="readiness")
    assert service.stop(signal.SIGTERM) == 0

    rebuilt = replace(settings, view_table_prefix=settings.view_table_prefix + "rebuilt_")
    assert rebuild(rebuilt) == len(events)
    rebuilt_store = open_store(rebuilt.view_store, rebuilt.view_table_prefix)
    service_store = open_store(settings.view_store, settings.view_table_prefix)
    try:
        from_rebuild, from_service = rebuilt_store.load(), service_store.load()
    finally:
        rebuilt_store.close()
        service_store.close()
    assert from_service.position == from_rebuild.position == final
    assert from_service.keys == from_rebuild.keys
    assert from_service.organizations == from_rebuild.organizations
    assert from_service.secrets == from_rebuild.secrets
    assert live_answers == answers_of(from_rebuild)
    assert any(a["locations"] for a in live_answers.values())


def test_a_batch_at_or_below_the_stored_position_changes_nothing(settings: Settings):
    log = EventLog().setup()
    log.location("hq")
    model = rules.fold(log.events)
    store = open_store(settings.view_store, settings.view_table_prefix)
    try:
        first = Batch(
            model.position,
            organizations=[("org-1", msgspec.json.encode(model.organizations["org-1"]).decode())],
        )
        assert store.save(first)
        stale = Batch(model.position, organizations=[("org-1", "{}")])
        assert not store.save(stale)
        assert not store.save(replace(stale, position=model.position - 1))
        loaded = store.load()
        assert loaded.position == model.position
        assert loaded.organizations == model.organizations
    finally:
        store.close()
