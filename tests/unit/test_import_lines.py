"""`apikeys import` input: JSON lines become ImportApiKeys commands of one organization and
actor each, within the key count and entry-size limits; a bad line is reported with its number
and a code; results are counted back to the lines they answer."""

from __future__ import annotations

import io
import json
from typing import Any

import msgspec
import pytest

from contracts.commands import IMPORT_MAX_KEYS, ImportApiKeys, command_decoder
from contracts.results import CommandResult, Error, KeyOutcome
from contracts.streams import DATA_FIELD, ENTRY_MAX_BYTES
from services.bulk_import.lines import BadLine, Batch, Grouper, batches, parse_line
from services.bulk_import.sender import Tally


def line(key_id: str, org: str = "acme", actor: str = "alice", **fields: Any) -> dict[str, Any]:
    return {
        "organization_id": org,
        "actor_id": actor,
        "key_id": key_id,
        "name": f"Key {key_id}",
        "location_ids": ["L1"],
        "role_ids": ["R1"],
        "secret_sha256": "a" * 64,
        "secret_hint": "apk_...0000",
        **fields,
    }


def source(*lines: dict[str, Any] | str) -> io.BytesIO:
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    return io.BytesIO(text.encode())


def commands(items: list[Batch | BadLine]) -> list[ImportApiKeys]:
    found = []
    for i, item in enumerate(items):
        if isinstance(item, Batch):
            command = command_decoder.decode(item.command(f"c{i}"))
            assert isinstance(command, ImportApiKeys)
            found.append(command)
    return found


class TestGrouping:
    def test_keys_are_grouped_by_organization_and_actor_in_line_order(self) -> None:
        items = list(
            batches(
                source(line("a1"), line("b1", org="other"), line("a2"), line("c1", actor="bob"))
            )
        )
        groups = {(b.organization_id, b.actor_id): b.lines for b in items if isinstance(b, Batch)}
        assert groups == {("acme", "alice"): [1, 3], ("other", "alice"): [2], ("acme", "bob"): [4]}
        keys = {
            (c.organization_id, c.actor_id): [k.key_id for k in c.keys] for c in commands(items)
        }
        assert keys[("acme", "alice")] == ["a1", "a2"]

    def test_a_command_holds_at_most_the_import_limit_of_keys(self) -> None:
        items = list(batches(source(*[line(f"k{i}") for i in range(2 * IMPORT_MAX_KEYS + 1)])))
        sizes = [len(c.keys) for c in commands(items)]
        assert sizes == [IMPORT_MAX_KEYS, IMPORT_MAX_KEYS, 1]

    def test_a_command_stays_within_the_entry_size_limit(self) -> None:
        wide = [f"location-{i:04d}-" + "x" * 180 for i in range(900)]  # ~180 KB a key
        items = list(batches(source(*[line(f"k{i}", location_ids=wide) for i in range(12)])))
        batches_made = [b for b in items if isinstance(b, Batch)]
        assert len(batches_made) > 1
        for i, batch in enumerate(batches_made):
            assert len(DATA_FIELD) + len(batch.command(f"c-{'x' * 190}{i}")) <= ENTRY_MAX_BYTES
        assert sum(len(b.lines) for b in batches_made) == 12

    def test_memory_held_in_unfinished_commands_is_bounded(self) -> None:
        grouper = Grouper(held_keys=10)
        let_go = []
        for i in range(50):
            parsed = parse_line(json.dumps(line(f"k{i}", org=f"org{i}")).encode(), i + 1)
            assert not isinstance(parsed, BadLine)
            let_go += list(grouper.add(*parsed, i + 1))
            assert grouper.held <= 10
        assert sum(len(b.lines) for b in let_go) + grouper.held == 50


class TestBadLines:
    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("{not json", "invalid_json"),
            ('["a list"]', "invalid_command"),
            (json.dumps(line("k", type="CreateApiKey")), "invalid_command"),
            (json.dumps(line("k", command_id="c1")), "invalid_command"),
            (json.dumps({k: v for k, v in line("k").items() if k != "key_id"}), "invalid_command"),
            (json.dumps(line("k", location_ids="L1")), "invalid_command"),
            (json.dumps(line("k" * 201)), "invalid_command"),
            (json.dumps(line("k", expires_at="tomorrow")), "invalid_command"),
        ],
    )
    def test_a_bad_line_is_reported_with_its_number_and_code(self, text: str, code: str) -> None:
        items = list(batches(source(line("good-1"), text, line("good-2"))))
        bad = [i for i in items if isinstance(i, BadLine)]
        assert [(b.line, b.code) for b in bad] == [(2, code)]
        assert [k.key_id for c in commands(items) for k in c.keys] == ["good-1", "good-2"]

    def test_a_line_over_the_entry_size_limit_is_skipped_unread(self) -> None:
        huge = json.dumps(line("big", name="n" * (ENTRY_MAX_BYTES + 10)))
        items = list(batches(source(line("a"), huge, line("b"))))
        bad = [i for i in items if isinstance(i, BadLine)]
        assert [(b.line, b.code) for b in bad] == [(2, "entry_too_large")]
        assert [b.lines for b in items if isinstance(b, Batch)] == [[1, 3]]

    def test_blank_lines_are_passed_over_and_still_counted(self) -> None:
        items = list(batches(source(line("a"), "", "   ", line("b"))))
        assert [b.lines for b in items if isinstance(b, Batch)] == [[1, 4]]

    def test_optional_fields_may_be_left_out(self) -> None:
        minimal = {k: v for k, v in line("k").items() if k not in ("role_ids", "secret_hint")}
        parsed = parse_line(json.dumps(minimal).encode(), 1)
        assert not isinstance(parsed, BadLine)
        decoded = msgspec.json.decode(parsed[1])
        assert decoded["role_ids"] == [] and "expires_at" in decoded


class TestTally:
    def test_outcomes_count_back_to_their_lines(self) -> None:
        rejections: list[tuple[int, str, str]] = []
        tally = Tally(on_rejection=lambda *r: rejections.append(r))
        batch = Batch("acme", "alice", lines=[3, 5, 9])
        outcomes = [
            KeyOutcome(key_id="a", status="accepted"),
            KeyOutcome(key_id="b", status="rejected", error=Error("unknown_role", "no R9")),
            KeyOutcome(key_id="c", status="already_present"),
        ]
        result = CommandResult(command_id="c", type="ImportApiKeys", status="accepted",
                               outcomes=outcomes)  # fmt: skip
        tally.record(batch, result)
        assert (tally.accepted, tally.rejected, tally.already_present) == (1, 1, 1)
        assert rejections == [(5, "unknown_role", "no R9")]

    def test_a_command_refused_without_outcomes_rejects_each_of_its_lines(self) -> None:
        rejections: list[tuple[int, str, str]] = []
        tally = Tally(on_rejection=lambda *r: rejections.append(r))
        result = CommandResult(command_id="c", type="ImportApiKeys", status="rejected",
                               error=Error("invalid_command", "bad"))  # fmt: skip
        tally.record(Batch("acme", "alice", lines=[1, 2]), result)
        assert [r[:2] for r in rejections] == [(1, "invalid_command"), (2, "invalid_command")]
