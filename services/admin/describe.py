"""A key's history entry in words: what happened and what it changed, with location paths and
role names in place of ids."""

from __future__ import annotations

from typing import Any

from contracts.audit import HistoryEntry

WHAT = {
    "ApiKeyCreated": "Created the key",
    "ApiKeyRenamed": "Renamed the key",
    "KeyLocationAdded": "Added a location",
    "KeyLocationRemoved": "Removed a location",
    "KeyRoleAdded": "Added a role",
    "KeyRoleRemoved": "Removed a role",
    "RoleLocationToggled": "Changed Advanced Role Configuration",
    "KeySecretRotated": "Rotated the secret",
    "ApiKeyDisabled": "Disabled the key",
    "ApiKeyEnabled": "Enabled the key",
    "ApiKeyDeleted": "Deleted the key",
}
# the key's fields worth a word, in this order; the rest (status flags the type already says,
# hashes, the event's own copies of these) are left out
SHOWN = ("name", "location_ids", "role_ids", "matrix", "expires_at", "secret_hint")


def describe(entry: HistoryEntry, paths: dict[str, str], roles: dict[str, str]) -> str:
    parts = [WHAT.get(entry.type, entry.type)]
    changes = entry.changes
    if entry.type == "RoleLocationToggled":
        role = roles.get(changes.get("role_id", ""), changes.get("role_id", ""))
        where = paths.get(changes.get("location_id", ""), changes.get("location_id", ""))
        state = "checked" if changes.get("applies") else "unchecked"
        return f"{parts[0]}: {role} at {where} {state}"
    for name in SHOWN:
        if name in changes:
            text = _text(name, _new(changes[name]), paths, roles)
            if text:
                parts.append(text)
    return "; ".join(parts)


def _new(value: Any) -> Any:
    """A change is ``{"from", "to"}`` after the first event, the value itself in the first."""
    if isinstance(value, dict) and set(value) == {"from", "to"}:
        return value["to"]
    return value


def _text(name: str, value: Any, paths: dict[str, str], roles: dict[str, str]) -> str:
    if value is None:
        return ""
    if name == "name":
        return f"name: {value}"
    if name == "location_ids":
        return "locations: " + "; ".join(paths.get(x, x) for x in value)
    if name == "role_ids":
        return "roles: " + (", ".join(roles.get(x, x) for x in value) or "none")
    if name == "matrix":
        off = [c for c in value if not c.get("applies", True)]
        return f"{len(off)} grid cells unchecked" if off else "every grid cell checked"
    if name == "expires_at":
        return f"expires at {value}"
    return f"token {value}"
