"""The replay on the wire: a reader that has fallen behind the events stream's window asks the
keys service for the range it missed, and the keys service publishes that range from its event
store to a stream of the requester's own (``streams.replay_stream``).

The reply stream holds the events in the events stream's format (entry id ``<position>-1``, the
event JSON under ``DATA_FIELD``), then one end marker, ``ReplayEnd``, under entry id
``<last_position>-2``. A reply is bounded: when it stops short of ``up_to_position``
(``complete`` false) the requester asks again after ``last_position``.
"""

from typing import Annotated

import msgspec

# what a request id may hold: it becomes part of a stream name the keys service writes to
REQUEST_ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$"
RequestId = Annotated[str, msgspec.Meta(pattern=REQUEST_ID_PATTERN)]
Position = Annotated[int, msgspec.Meta(ge=0)]


class ReplayRequest(msgspec.Struct, kw_only=True):
    """Publish every event after ``after_position`` up to and including ``up_to_position``."""

    request_id: RequestId
    after_position: Position
    up_to_position: Position


class ReplayEnd(msgspec.Struct, tag="ReplayEnd", tag_field="type", kw_only=True):
    """The last entry of a reply: every published event in (after_position, last_position]
    has been written before it. ``error`` names a request that could not be answered
    (``invalid_request``)."""

    request_id: str
    last_position: int
    complete: bool
    error: str | None = None


replay_request_decoder = msgspec.json.Decoder(ReplayRequest)
replay_end_decoder = msgspec.json.Decoder(ReplayEnd)
