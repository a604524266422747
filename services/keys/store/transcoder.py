"""A faster drop-in for eventsourcing's `JSONTranscoder`: the same bytes for the same state.

The stock transcoder runs the standard library's JSON encoder with a Python callback for
every datetime and UUID. Here the state is first turned into plain JSON values in one pass
(each registered type replaced by the stock `{"_type_", "_data_"}` object) and then written
by msgspec, which escapes strings and writes integers exactly as `json` does with
`separators=(",", ":")` and `ensure_ascii=False` (tested over every code point). Anything
outside that plain subset (floats, subclasses of JSON types, non-string keys, ...) is encoded
by the stock code, so the output never differs. Decoding is the stock decoder's.

Selected through eventsourcing's `TRANSCODER_TOPIC` (see `store.application`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from eventsourcing.persistence import JSONTranscoder

_SCALARS = frozenset({str, int, bool, type(None)})
_JSON_NATIVE = (str, int, float, list, tuple, dict)


class _NotPlain(Exception):
    pass


class FastJSONTranscoder(JSONTranscoder):
    def __init__(self) -> None:
        super().__init__()
        self._write = msgspec.json.Encoder().encode

    def encode(self, obj: Any) -> bytes:
        try:
            return self._write(self._plain_state(obj) if type(obj) is dict else self._plain(obj))
        except Exception:  # noqa: BLE001 - the stock path encodes or raises its own error
            return super().encode(obj)

    def _plain_state(self, state: dict[Any, Any]) -> dict[str, Any]:
        """An event's state: strings, None and one datetime (the timestamp) in the common
        case, which is recognised with whole-dict operations instead of a loop in Python."""
        if not _STR.issuperset(map(type, state)):
            raise _NotPlain
        out = state.copy()
        kinds = list(map(type, state.values()))
        if _SCALARS.issuperset(kinds):
            return out
        plain = self._plain
        done = ""
        timestamp = state.get("timestamp")
        if type(timestamp) is datetime and kinds.count(datetime) == 1:
            out["timestamp"] = plain(timestamp)
            if _SCALARS_DATETIME.issuperset(kinds):
                return out
            done = "timestamp"
        for key, value in state.items():
            if type(value) not in _SCALARS and key != done:
                out[key] = plain(value)
        return out

    def _plain(self, value: Any) -> Any:
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is list or kind is tuple:
            if _SCALARS.issuperset(map(type, value)):
                return value
            return [self._plain(item) for item in value]
        if kind is dict:
            return self._plain_state(value)
        if isinstance(value, _JSON_NATIVE):
            raise _NotPlain  # floats, and subclasses the json module writes natively
        transcoding = self.types.get(kind)
        if transcoding is None:
            raise _NotPlain
        return {"_type_": transcoding.name, "_data_": self._plain(transcoding.encode(value))}


_STR = frozenset({str})
_SCALARS_DATETIME = _SCALARS | {datetime}
