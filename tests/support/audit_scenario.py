"""The audit scenario: a key's history at known times (one step a day), each step with the
answer at plant-7 just before and at it; and the stream entries a consumer reads for events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from contracts import events as ev
from tests.support.projection_builders import T0, EventLog, stream_fields

TICK = timedelta(microseconds=1)


class TimedLog(EventLog):
    """An event log whose events occur at ``now`` (set by the test before each step)."""

    now: datetime = T0

    def _next(self, cls: type[Any], **fields: Any) -> Any:
        event = msgspec.structs.replace(super()._next(cls, **fields), occurred_at=self.now)
        self.events[-1] = event
        return event


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def scenario() -> tuple[TimedLog, list[tuple[datetime, Any, Any]]]:
    """Steps at known times, each with the answer at plant-7 just before and at the step."""
    log = TimedLog().setup()
    log.location("site")
    log.location("plant-7", "site")
    log.role("viewer", ("view_private", "location_and_below"))
    log.org(ev.LocationDefined, location_id="elsewhere", name="elsewhere", parent_id=None)
    other = TimedLog("org-2", start=1000)
    other.now = day(3)
    other.setup()
    steps: list[tuple[datetime, Any, Any]] = []

    def step(n: int, act: Any, before: Any, after: Any) -> None:
        log.now = day(n)
        act()
        steps.append((day(n), before, after))

    step(1, lambda: log.create_key("key-1", ["site"], []), "unknown_key", "not_granted")
    step(
        2,
        lambda: log.key(ev.KeyRoleAdded, "key-1", {"role_id": "viewer"}, role_ids=["viewer"]),
        "not_granted",
        True,
    )
    step(3, lambda: log.toggle("key-1", "viewer", "site", False), True, "not_granted")
    step(4, lambda: log.toggle("key-1", "viewer", "site", True), "not_granted", True)
    step(5, lambda: log.move("plant-7", "elsewhere"), True, "not_granted")
    step(6, lambda: log.move("plant-7", "site"), "not_granted", True)
    step(
        7,
        lambda: log.role("viewer", ("view_private", "location_only"), changed=True),
        True,
        "not_granted",
    )
    step(
        8,
        lambda: log.role("viewer", ("view_private", "location_and_below"), changed=True),
        "not_granted",
        True,
    )
    step(9, lambda: log.org(ev.ApiModuleDisabled), True, "api_module_disabled")
    step(10, lambda: log.org(ev.ApiModuleEnabled), "api_module_disabled", True)
    step(11, lambda: log.key(ev.ApiKeyDisabled, "key-1", enabled=False), True, "disabled")
    step(12, lambda: log.key(ev.ApiKeyEnabled, "key-1", enabled=True), "disabled", True)
    step(13, lambda: log.key(ev.ApiKeyDeleted, "key-1", deleted=True), True, "deleted")
    log.events.extend(other.events)  # another organization's events never count
    log.events.sort(key=lambda e: e.position)
    return log, steps


def entries(events: list[ev.AnyEvent]) -> list:
    rows = []
    for event in events:
        entry_id, fields = stream_fields(event)
        rows.append((entry_id.encode(), {k.encode(): v for k, v in fields.items()}))
    return rows
