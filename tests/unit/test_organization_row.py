"""The organization's row written a chunk at a time is exactly the row written at once."""

from __future__ import annotations

import pytest

from contracts.codec import json_encoder
from contracts.common import Permission
from services.projections.model.values import LocationNode, OrganizationView, RoleDefinition
from services.projections.store.batch import organization_json


@pytest.mark.parametrize(("locations", "roles"), [(0, 0), (3, 2), (4_999, 1), (5_000, 250)])
async def test_the_chunked_row_equals_the_whole_row(locations: int, roles: int) -> None:
    view = OrganizationView(
        api_module_enabled=bool(locations % 2),
        locations={
            f"l{i}": LocationNode('n "é"', None if i == 0 else "l0") for i in range(locations)
        },
        roles={
            f"r{i}": RoleDefinition("r", [Permission(f"p{j}", "everywhere") for j in range(3)])
            for i in range(roles)
        },
        administrators=[f"u{i}" for i in range(roles % 3)],
    )
    assert await organization_json(view) == json_encoder.encode(view).decode()
