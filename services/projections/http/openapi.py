"""The OpenAPI document of the query API as the app generates it; a copy is committed as
``contracts/schema/openapi.json`` (write it again with ``python -m
services.projections.http.openapi``), and a test fails when the two differ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.projections.http.app import create_app
from services.projections.runtime.live import LiveReadModel

COMMITTED = Path(__file__).resolve().parents[3] / "contracts" / "schema" / "openapi.json"


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = create_app(LiveReadModel()).openapi_schema.to_schema()
    return document


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    COMMITTED.write_text(render())
