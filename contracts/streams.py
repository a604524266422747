"""Default stream and group names; every entry carries one field, DATA_FIELD, holding UTF-8 JSON."""

DATA_FIELD = "__data__"
COMMANDS_STREAM = "apikeys.commands"
RESULTS_STREAM = "apikeys.results"
EVENTS_STREAM = "apikeys.events"
DEAD_LETTER_STREAM = "apikeys.dead-letter"
KEYS_GROUP = "apikeys-keys"


def position_to_entry_id(position: int) -> str:
    """The events stream uses the event's global position as its entry id, so it is idempotent."""
    return f"{position}-1"


def entry_id_to_position(entry_id: str | bytes) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


# The largest commands-stream entry read (its field names and values, in bytes): a larger one
# is dead-lettered unread with the reason ``entry_too_large``.
ENTRY_MAX_BYTES = 1_048_576
# A dead letter keeps at most this much of the entry's payload (cut at a character boundary;
# ``truncated`` says so), so dead letters stay small whatever was sent.
DEAD_LETTER_PAYLOAD_MAX_BYTES = 65_536
