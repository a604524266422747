"""What a person asked for on a key's form, and the commands that get the key there. Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from contracts import commands as c
from contracts import directory as d
from services.admin.sender import new_command_id

Cell = tuple[str, str]  # (role_id, location_id)


@dataclass
class KeyForm:
    """The fields of the New API Key window and of a key's edit form."""

    name: str = ""
    location_ids: list[str] = field(default_factory=list)
    role_ids: list[str] = field(default_factory=list)
    off: set[Cell] = field(default_factory=set)  # grid cells unchecked

    @classmethod
    def parse(cls, form: dict[str, list[str]]) -> KeyForm:
        return cls(
            name=(form.get("name") or [""])[0],
            location_ids=unique(form.get("location", [])),
            role_ids=unique(form.get("role", [])),
            off={cell for text in form.get("off", []) if (cell := parse_cell(text))},
        )

    @classmethod
    def of_key(cls, key: d.KeyDetails) -> KeyForm:
        off = {(m.role_id, m.location_id) for m in key.matrix if not m.applies}
        return cls(key.name, list(key.location_ids), list(key.role_ids), off)

    def cells_off(self) -> list[Cell]:
        """The unchecked cells that still make sense (their role and location chosen)."""
        return sorted(
            (r, loc) for r, loc in self.off if r in self.role_ids and loc in self.location_ids
        )


def unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def parse_cell(text: str) -> Cell | None:
    """A grid cell as the page sends it: a JSON array ``[role_id, location_id]``."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0], value[1]
    return None


def edit_commands(key: d.KeyDetails, wanted: KeyForm, actor_id: str) -> list[c.KeyCommand]:
    """Rename, add locations and roles, set the grid's cells, then remove what went: adding
    first keeps the key valid between the steps (it always keeps a location)."""
    base = {"organization_id": key.organization_id, "actor_id": actor_id, "key_id": key.key_id}

    def make(kind: type[c.KeyCommand], **fields: object) -> c.KeyCommand:
        return kind(command_id=new_command_id(), **base, **fields)  # type: ignore[arg-type]

    out: list[c.KeyCommand] = []
    if wanted.name != key.name:
        out.append(make(c.RenameApiKey, name=wanted.name))
    out += [
        make(c.AddKeyLocation, location_id=x)
        for x in wanted.location_ids
        if x not in key.location_ids
    ]
    out += [make(c.AddKeyRole, role_id=x) for x in wanted.role_ids if x not in key.role_ids]
    if len(wanted.location_ids) >= 2 and wanted.role_ids:
        now_off = {(m.role_id, m.location_id) for m in key.matrix if not m.applies}
        for role_id in wanted.role_ids:
            for location_id in wanted.location_ids:
                cell = (role_id, location_id)
                if (cell in wanted.off) != (cell in now_off):
                    applies = cell not in wanted.off
                    out.append(
                        make(
                            c.ToggleRoleLocation,
                            role_id=role_id,
                            location_id=location_id,
                            applies=applies,
                        )
                    )
    out += [make(c.RemoveKeyRole, role_id=x) for x in key.role_ids if x not in wanted.role_ids]
    out += [
        make(c.RemoveKeyLocation, location_id=x)
        for x in key.location_ids
        if x not in wanted.location_ids
    ]
    return out
