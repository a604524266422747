"""The keys service remembers recent commands' results (``RecentOutcomes``): an import's result
is kept packed, every result comes back equal to what was remembered, and the memory is bounded
by commands and by key outcomes."""

from __future__ import annotations

import gc

from contracts.results import CommandResult, Error, KeyOutcome
from services.keys.recent import RecentOutcomes


def plain(command_id: str) -> CommandResult:
    return CommandResult(command_id=command_id, type="RenameApiKey", status="accepted", position=7)


def imported(command_id: str, keys: int) -> CommandResult:
    outcomes = [KeyOutcome(key_id=f"{command_id}-k{i}", status="accepted") for i in range(keys)]
    outcomes[0] = KeyOutcome(key_id=outcomes[0].key_id, status="rejected", error=Error("x", "y"))
    return CommandResult(
        command_id=command_id, type="ImportApiKeys", status="accepted", outcomes=outcomes
    )


def test_results_come_back_as_remembered_with_their_entry() -> None:
    recent = RecentOutcomes(10)
    first, second = plain("c1"), imported("c2", 5)
    recent.remember("c1", "1-0", first)
    recent.remember("c2", "2-0", second)
    assert recent.get("c1") == ("1-0", first)
    assert recent.get("c2") == ("2-0", second)
    assert recent.get("c3") is None


def test_an_imports_outcomes_are_not_kept_as_objects() -> None:
    recent = RecentOutcomes(10, outcomes_per_command=1000)
    result = imported("c1", 1000)
    recent.remember("c1", "1-0", result)
    referents = gc.get_referents(*[kept for kept in recent._kept.values()])
    assert not any(isinstance(item, CommandResult) for item in referents)
    assert sum(isinstance(item, bytes) for item in referents) == 1


def test_bounded_by_commands_oldest_dropped_first() -> None:
    recent = RecentOutcomes(3)
    for i in range(5):
        recent.remember(f"c{i}", f"{i}-0", plain(f"c{i}"))
    assert len(recent) == 3
    assert recent.get("c0") is None and recent.get("c1") is None
    assert recent.get("c4") is not None


def test_bounded_by_key_outcomes() -> None:
    recent = RecentOutcomes(100, outcomes_per_command=10)  # at most 1,000 commands + outcomes
    for i in range(5):
        recent.remember(f"c{i}", f"{i}-0", imported(f"c{i}", 300))
    assert recent.weight <= 1000
    assert len(recent) == 3  # 3 x 301
    assert recent.get("c1") is None and recent.get("c2") is not None


def test_one_result_larger_than_the_bound_is_still_remembered_alone() -> None:
    recent = RecentOutcomes(2, outcomes_per_command=10)
    recent.remember("c0", "0-0", plain("c0"))
    recent.remember("c1", "1-0", imported("c1", 500))
    assert len(recent) == 1 and recent.get("c1") is not None


def test_remembering_a_command_again_replaces_it() -> None:
    recent = RecentOutcomes(10)
    recent.remember("c1", "1-0", imported("c1", 3))
    recent.remember("c1", "2-0", imported("c1", 3))
    assert len(recent) == 1 and recent.weight == 4
    assert recent.get("c1") == ("2-0", imported("c1", 3))
