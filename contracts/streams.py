"""Default stream and group names; every entry carries one field, DATA_FIELD, holding UTF-8 JSON."""

DATA_FIELD = "__data__"
COMMANDS_STREAM = "apikeys.commands"
RESULTS_STREAM = "apikeys.results"
EVENTS_STREAM = "apikeys.events"
DEAD_LETTER_STREAM = "apikeys.dead-letter"
KEYS_GROUP = "apikeys-keys"
# replay requests (contracts.replay.ReplayRequest), answered on replay_stream(request_id)
REPLAY_REQUESTS_STREAM = "apikeys.replay-requests"
REPLAY_STREAM_PREFIX = "apikeys.replay."
# the entry id sequence of a reply's end marker (events keep the events stream's "-1")
REPLAY_END_SEQUENCE = 2


def position_to_entry_id(position: int) -> str:
    """The events stream uses the event's global position as its entry id, so it is idempotent."""
    return f"{position}-1"


def entry_id_to_position(entry_id: str | bytes) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def replay_stream(request_id: str) -> str:
    """The private stream a replay request is answered on."""
    return f"{REPLAY_STREAM_PREFIX}{request_id}"


def replay_end_entry_id(last_position: int) -> str:
    return f"{last_position}-{REPLAY_END_SEQUENCE}"


# The largest commands-stream entry read (its field names and values, in bytes): a larger one
# is dead-lettered unread with the reason ``entry_too_large``.
ENTRY_MAX_BYTES = 1_048_576
# A dead letter keeps at most this much of the entry's payload (cut at a character boundary;
# ``truncated`` says so), so dead letters stay small whatever was sent.
DEAD_LETTER_PAYLOAD_MAX_BYTES = 65_536
