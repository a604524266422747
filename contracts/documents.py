"""Machine-readable contracts generated from the structs: a JSON Schema per message and query
answer, and an AsyncAPI 3 document of every stream. The committed copies under
``contracts/schema/`` are checked against these by the tests; write them again with
``python -m contracts.documents``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from contracts import audit, commands, events, queries, replay, results, streams

SCHEMA_DIR = Path(__file__).parent / "schema"
COMPONENTS = "#/components/schemas/{name}"

# every message and answer on the wire, by the name of its schema file
MESSAGES: dict[str, Any] = {
    "command": commands.AnyCommand,
    "command-result": results.CommandResult,
    "event": events.AnyEvent,
    "dead-letter": results.DeadLetter,
    "replay-request": replay.ReplayRequest,
    "replay-end": replay.ReplayEnd,
    "check-answer": audit.ExplainedCheckAnswer,
    "verify-request": queries.VerifyRequest,
    "verify-answer": queries.VerifyAnswer,
    "key-permissions-answer": queries.KeyPermissionsAnswer,
    "organization-keys-answer": queries.OrganizationKeysAnswer,
    "key-history-answer": audit.KeyHistoryAnswer,
    "health-answer": queries.HealthAnswer,
    "error-answer": queries.ErrorAnswer,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: msgspec.json.schema(kind) for name, kind in MESSAGES.items()}


def _channel(address: str, description: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "address": address,
        "description": description
        + f" Every entry has one field, `{streams.DATA_FIELD}`, holding the message as UTF-8 JSON.",
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        **extra,
    }


CHANNELS: dict[str, dict[str, Any]] = {
    "commands": _channel(
        streams.COMMANDS_STREAM,
        "Commands in (APIKEYS_COMMANDS_STREAM). With N > 1 partitions (the Redis key "
        "apikeys.partitions): `<stream>.<p>`, p = zlib.crc32(organization_id as UTF-8) % N.",
        "Command",
    ),
    "results": _channel(
        streams.RESULTS_STREAM, "One result per command, in command order.", "CommandResult"
    ),
    "events": _channel(
        streams.EVENTS_STREAM,
        "Every stored event once, in position order, at entry id `<position>-1`.",
        "Event",
    ),
    "dead-letter": _channel(
        streams.DEAD_LETTER_STREAM, "Entries that are not commands, or kept failing.", "DeadLetter"
    ),
    "replay-requests": _channel(
        streams.REPLAY_REQUESTS_STREAM, "Requests for a range of published events.", "ReplayRequest"
    ),
    "replay": {
        **_channel(
            streams.REPLAY_STREAM_PREFIX + "{request_id}",
            "A replay's events (entry id `<position>-1`), then its end marker (`<last>-2`).",
            "Event",
        ),
        "messages": {
            "Event": {"$ref": "#/components/messages/Event"},
            "ReplayEnd": {"$ref": "#/components/messages/ReplayEnd"},
        },
        "parameters": {"request_id": {"description": "the request's id"}},
    },
}
CHANNEL_MESSAGES = {
    "Command": commands.AnyCommand,
    "CommandResult": results.CommandResult,
    "Event": events.AnyEvent,
    "DeadLetter": results.DeadLetter,
    "ReplayRequest": replay.ReplayRequest,
    "ReplayEnd": replay.ReplayEnd,
}
# (operation, action, channel): "send" is what a program around the product does
OPERATIONS = [
    ("sendCommand", "send", "commands"),
    ("receiveResult", "receive", "results"),
    ("receiveEvent", "receive", "events"),
    ("receiveDeadLetter", "receive", "dead-letter"),
    ("sendReplayRequest", "send", "replay-requests"),
    ("receiveReplay", "receive", "replay"),
]


def asyncapi() -> dict[str, Any]:
    names = list(CHANNEL_MESSAGES)
    payloads, schemas = msgspec.json.schema_components(
        [CHANNEL_MESSAGES[n] for n in names], ref_template=COMPONENTS
    )
    messages = {
        name: {"name": name, "contentType": "application/json", "payload": payload}
        for name, payload in zip(names, payloads, strict=True)
    }
    operations = {
        op: {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [
                {"$ref": f"#/channels/{channel}/messages/{m}"}
                for m in CHANNELS[channel]["messages"]
            ],
        }
        for op, action, channel in OPERATIONS
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "API keys streams",
            "version": "1.0.0",
            "description": "The Redis streams of the API keys product (see README, The wire "
            "contract). Stream names are the defaults; each is a setting.",
        },
        "defaultContentType": "application/json",
        "channels": CHANNELS,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def generated() -> dict[str, str]:
    """Every committed file's expected text, by file name."""
    files = {f"{name}.schema.json": render(schema) for name, schema in json_schemas().items()}
    files["asyncapi.json"] = render(asyncapi())
    return files


def write(directory: Path = SCHEMA_DIR) -> None:
    directory.mkdir(exist_ok=True)
    for name, text in generated().items():
        (directory / name).write_text(text)


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR)
