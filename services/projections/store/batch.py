"""A batch: the rows to write, serialised from the model, and the position they reflect."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.codec import json_encoder
from services.projections.model import gc_policy
from services.projections.model.fold import Touched
from services.projections.model.state import ReadModel
from services.projections.model.values import OrganizationView
from services.projections.store.event_log import EventRow
from services.projections.store.schema import EVENT_LOG, KEYS, ORGANIZATIONS, SECRETS, Table

SecretRow = tuple[str, str, str, str | None]  # sha256, key_id, kind, valid_until


@dataclass
class Batch:
    """Rows to write, serialised from the in-memory model, and the position they reflect."""

    position: int
    keys: list[tuple[str, str, str]] = field(default_factory=list)  # key_id, org_id, state json
    organizations: list[tuple[str, str]] = field(default_factory=list)  # org_id, state json
    # each touched key's secret rows, which replace whatever it had
    secrets: list[tuple[str, list[SecretRow]]] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)  # the event log rows to append

    def table_rows(self) -> list[tuple[Table, Sequence[tuple[Any, ...]]]]:
        """The rows for each table, in the order they are written."""
        secrets = [row for _, rows in self.secrets for row in rows]
        return [
            (EVENT_LOG, self.events),
            (ORGANIZATIONS, self.organizations),
            (KEYS, self.keys),
            (SECRETS, secrets),
        ]


def batch_for(
    model: ReadModel,
    touched: Iterable[Touched],
    events: Iterable[EventRow] = (),
) -> Batch:
    key_ids = sorted({t.key_id for t in touched if t.key_id is not None})
    org_ids = sorted({t.organization_id for t in touched if t.key_id is None})
    return _rows(Batch(model.position, events=list(events)), model, org_ids, key_ids)


async def batch_for_yielding(
    model: ReadModel,
    touched: Iterable[Touched],
    events: Iterable[EventRow] = (),
    chunk: int = 2000,
) -> Batch:
    """``batch_for``, yielding to the event loop every ``chunk`` keys, so that a batch of many
    keys (everything applied during a long store outage) does not hold up queries. The model
    must not change meanwhile: its one writer awaits this."""
    key_ids = sorted({t.key_id for t in touched if t.key_id is not None})
    org_ids = sorted({t.organization_id for t in touched if t.key_id is None})
    batch = Batch(model.position, events=list(events))
    for org_id in org_ids:
        text = await organization_json(model.organizations[org_id])
        batch.organizations.append((org_id, text))
    for start in range(0, len(key_ids), chunk):
        _rows(batch, model, [], key_ids[start : start + chunk])
        await asyncio.sleep(0)
    return batch


async def organization_json(view: OrganizationView, chunk: int = 1000) -> str:
    """The organization's row, as ``encode(view)`` gives it, written a chunk of locations and
    roles at a time with a yield to the event loop between chunks (the largest organization's
    row is tens of megabytes), and joined once."""
    if len(view.locations) + len(view.roles) <= chunk:
        return json_encoder.encode(view).decode()
    parts = ['{"api_module_enabled":', "true" if view.api_module_enabled else "false"]
    parts.append(',"locations":')
    await _dict_json(parts, view.locations, chunk)
    parts.append(',"roles":')
    await _dict_json(parts, view.roles, chunk // 20 or 1)  # a role holds many permissions
    parts.append(',"administrators":')
    parts.append(json_encoder.encode(view.administrators).decode())
    parts.append("}")
    return "".join(parts)


async def _dict_json(parts: list[str], values: dict[str, Any], chunk: int) -> None:
    """Append the dict's JSON object to ``parts``, a chunk of entries at a time (the dict does
    not change meanwhile: the model's one writer awaits this)."""
    encode, items = json_encoder.encode, iter(values.items())
    parts.append("{")
    first = True
    while True:
        with gc_policy.paused():
            piece = encode(dict(itertools.islice(items, chunk))).decode()
        if piece == "{}":
            parts.append("}")
            return
        parts.append(piece[1:-1] if first else "," + piece[1:-1])
        first = False
        await asyncio.sleep(0)


def full_batch(model: ReadModel, events: Iterable[EventRow] = ()) -> Batch:
    """Every row of the model (a rebuild)."""
    with gc_policy.paused():
        batch = Batch(model.position, events=list(events))
        return _rows(batch, model, sorted(model.organizations), sorted(model.keys))


def _rows(batch: Batch, model: ReadModel, org_ids: list[str], key_ids: list[str]) -> Batch:
    encode = json_encoder.encode
    for org_id in org_ids:
        batch.organizations.append((org_id, encode(model.organizations[org_id]).decode()))
    for key_id in key_ids:
        view = model.keys[key_id]
        state = view.state
        batch.keys.append((key_id, view.organization_id, encode(view.stored()).decode()))
        rows: list[SecretRow] = [(state.secret_sha256, key_id, "current", None)]
        if state.previous_secret_sha256:  # the old secret answers until its grace period ends
            until = state.previous_secret_valid_until
            until_text = until.isoformat() if until else None
            rows.append((state.previous_secret_sha256, key_id, "previous", until_text))
        batch.secrets.append((key_id, rows))
    return batch
