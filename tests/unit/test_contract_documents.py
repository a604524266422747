"""The committed machine-readable contracts are exactly what the code generates, and the AsyncAPI
document holds together (every reference resolves, every stream is there)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts import documents, streams
from contracts.commands import COMMAND_TYPES
from services.cli import main


@pytest.mark.parametrize("name", sorted(documents.generated()))
def test_committed_file_matches_the_code(name: str) -> None:
    committed = documents.SCHEMA_DIR / name
    assert committed.exists(), f"{name} missing: run python -m contracts.documents"
    assert committed.read_text() == documents.generated()[name], (
        f"contracts/schema/{name} differs from the code: run python -m contracts.documents"
    )


def test_no_stale_file_is_committed() -> None:
    expected = set(documents.generated()) | {"openapi.json"}
    assert {p.name for p in documents.SCHEMA_DIR.glob("*.json")} <= expected


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_reference_of_the_asyncapi_document_resolves() -> None:
    document = documents.asyncapi()
    assert document["asyncapi"] == "3.0.0"
    for ref in refs(document):
        assert resolve(document, ref) is not None, ref


def test_every_stream_and_every_command_type_is_described() -> None:
    document = documents.asyncapi()
    addresses = {c["address"] for c in document["channels"].values()}
    assert {
        streams.COMMANDS_STREAM,
        streams.RESULTS_STREAM,
        streams.EVENTS_STREAM,
        streams.DEAD_LETTER_STREAM,
    } <= addresses
    schemas = document["components"]["schemas"]
    assert set(schemas) >= COMMAND_TYPES


def test_apikeys_asyncapi_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["asyncapi"]) == 0
    assert json.loads(capsys.readouterr().out) == documents.asyncapi()


def test_the_committed_openapi_document_matches_the_app() -> None:
    from services.projections.http.openapi import COMMITTED, render

    assert COMMITTED.read_text() == render(), (
        "contracts/schema/openapi.json differs: run python -m services.projections.http.openapi"
    )


def test_every_error_answer_of_the_openapi_document_is_the_error_body() -> None:
    from services.projections.http.openapi import openapi_document

    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and not (path == "/ready" and status == "503"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorAnswer"}, (path, method)
    error = document["components"]["schemas"]["ErrorAnswer"]
    assert set(error["required"]) == {"error", "detail"}
