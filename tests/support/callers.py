"""Two tenants and the callers of their query API: org-a with key ``ka``, org-b with key ``kb``,
their tokens, a callers file, and the served app on a loopback port (real HTTP, in process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts import events as ev
from contracts.tokens import CALLER_PREFIX, new_token, token_sha256
from services.common.http_limits import HttpLimits
from services.common.http_server import HttpServer
from services.projections.feed.consumer import apply_batch
from services.projections.http.app import create_app, served
from services.projections.main import listen, server_config
from services.projections.runtime.caller_counts import CallerCounts
from services.projections.runtime.callers import CallersFile
from services.projections.runtime.live import LiveReadModel
from services.projections.store import open_store
from tests.support.audit_scenario import entries
from tests.support.projection_builders import EventLog

NOW = datetime(2024, 1, 2, tzinfo=UTC)
AS_OF = (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
TOKEN_A = new_token()
TOKEN_B = new_token()


def tenant(organization_id: str, key_id: str, token: str, start: int) -> EventLog:
    log = EventLog(organization_id, start=start).setup()
    log.location("hq")
    log.role("viewer", ("view", "location_and_below"))
    log.create_key(key_id, ["hq"], ["viewer"], secret_sha256=token_sha256(token))
    log.key(ev.ApiKeyRenamed, key_id, {"name": f"{key_id} renamed"}, name=f"{key_id} renamed")
    return log


def world() -> list[ev.AnyEvent]:
    return tenant("org-a", "ka", TOKEN_A, 0).events + tenant("org-b", "kb", TOKEN_B, 100).events


# name -> (scopes, organizations)
CALLERS: dict[str, tuple[list[str], list[str]]] = {
    "gateway": (["verify", "check"], ["org-a"]),
    "auditor": (["audit", "list", "check"], ["org-a"]),
    "verifier": (["verify"], ["*"]),
    "root": (["verify", "check", "list", "audit"], ["*"]),
}
TOKENS = {name: new_token(CALLER_PREFIX) for name in CALLERS}


def entry(name: str, token: str, scopes: list[str], organizations: list[str]) -> dict:
    return {
        "name": name,
        "secret_sha256": token_sha256(token),
        "scopes": scopes,
        "organizations": organizations,
    }


def write_callers(path: Path, callers: list[dict]) -> None:
    """Replace the file whole, as an operator's tool would (a new file renamed over it)."""
    scratch = path.with_suffix(".new")
    scratch.write_text(json.dumps(callers))
    scratch.replace(path)


def standard_callers() -> list[dict]:
    return [entry(n, TOKENS[n], *CALLERS[n]) for n in CALLERS]


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


@dataclass
class ServedApi:
    url: str
    callers_file: CallersFile
    counts: CallerCounts


async def _started(server: HttpServer) -> None:
    while not server.started:
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def serve_api(tmp_path: Path) -> AsyncIterator[ServedApi]:
    """The served app with the standard callers, on a loopback port of its own, the callers
    file watched as the service watches it."""
    store = open_store(f"sqlite:///{tmp_path / 'views.db'}")
    live = LiveReadModel()
    await apply_batch(live, store, entries(world()))
    path = tmp_path / "callers.json"
    write_callers(path, standard_callers())
    callers_file = CallersFile(path)
    counts = CallerCounts()
    app = create_app(
        live, clock=lambda: NOW, event_log=store, callers=callers_file.callers, caller_counts=counts
    )
    listener = listen("127.0.0.1", 0)
    port = listener.getsockname()[1]
    server = HttpServer(server_config(served(app), HttpLimits()))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    watching = asyncio.create_task(callers_file.watch())
    try:
        await asyncio.wait_for(_started(server), 10)
        yield ServedApi(f"http://127.0.0.1:{port}", callers_file, counts)
    finally:
        watching.cancel()
        server.should_exit = True
        await asyncio.wait_for(serving, 5)
        listener.close()
        store.close()
