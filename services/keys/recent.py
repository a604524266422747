"""The outcomes of recent commands, so that a redelivered command is answered without reading
its receipt. A result with key outcomes (an import's) is kept packed, one bytes object: as
objects, its thousand outcomes would add a thousand references for the cycle collector to visit
on every full pass. Bounded by commands and by key outcomes."""

from __future__ import annotations

from collections import OrderedDict

import msgspec

from contracts.results import CommandResult

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(CommandResult).decode

OUTCOMES_PER_COMMAND = 10  # key outcomes kept, on average, per command remembered


class RecentOutcomes:
    def __init__(self, size: int, outcomes_per_command: int = OUTCOMES_PER_COMMAND) -> None:
        self.size = size  # commands
        self.max_weight = size * outcomes_per_command  # commands plus their key outcomes
        self.weight = 0
        self._kept: OrderedDict[str, tuple[str, CommandResult | bytes, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, command_id: str) -> tuple[str, CommandResult] | None:
        """The entry id that carried the command and its result, if remembered."""
        kept = self._kept.get(command_id)
        if kept is None:
            return None
        entry_id, result, _ = kept
        return entry_id, _unpack(result) if isinstance(result, bytes) else result

    def remember(self, command_id: str, entry_id: str, result: CommandResult) -> None:
        outcomes = len(result.outcomes or ())
        weight = 1 + outcomes
        earlier = self._kept.pop(command_id, None)
        if earlier is not None:
            self.weight -= earlier[2]
        self._kept[command_id] = (entry_id, _pack(result) if outcomes else result, weight)
        self.weight += weight
        while len(self._kept) > 1 and (
            len(self._kept) > self.size or self.weight > self.max_weight
        ):
            _, (_, _, dropped) = self._kept.popitem(last=False)
            self.weight -= dropped
