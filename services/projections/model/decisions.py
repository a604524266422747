"""Decisions and the answers that hold them, shared: one Answer per distinct set of reasons,
whatever key and location it serves. Callers read them and never change their lists."""

from __future__ import annotations

from typing import NamedTuple

from contracts.queries import DenialReason, Reason


class Decision(NamedTuple):
    allowed: bool
    reasons: list[Reason]
    denied_because: DenialReason | None


UNKNOWN_KEY = Decision(False, [], "unknown_key")
DELETED = Decision(False, [], "deleted")
MODULE_DISABLED = Decision(False, [], "api_module_disabled")
DISABLED = Decision(False, [], "disabled")
EXPIRED = Decision(False, [], "expired")
NOT_GRANTED = Decision(False, [], "not_granted")


class Answer(NamedTuple):
    others: Decision  # the item is not the key's own: own_items reasons do not count
    own: Decision


AnswerTable = dict[tuple[Reason, ...], Answer]


def answer_for(table: AnswerTable, reasons: tuple[Reason, ...]) -> Answer:
    """The shared answer for sorted, distinct reasons."""
    found = table.get(reasons)
    if found is None:
        others = [r for r in reasons if r.scope != "own_items"]
        found = Answer(
            Decision(True, others, None) if others else NOT_GRANTED,
            Decision(True, list(reasons), None),
        )
        table[reasons] = found
    return found


def settle(table: AnswerTable, reasons: list[Reason]) -> Answer:
    """The shared answer for reasons in any order, repeats included."""
    if len(reasons) == 1:
        return answer_for(table, (reasons[0],))
    return answer_for(table, tuple(sorted(set(reasons))))
