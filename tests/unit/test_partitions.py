"""The partition rule every publisher computes, and the fair share of partitions."""

from __future__ import annotations

import zlib

import pytest

from contracts.partitions import (
    commands_stream_for,
    partition_of,
    partition_stream,
    partition_streams,
)
from services.keys.partitions.registry import fair_share
from services.keys.settings import KeysSettings


class TestPartitionRule:
    @pytest.mark.parametrize("org", ["acme", "Zürich AG", "", "org-42", "日本"])
    @pytest.mark.parametrize("partitions", [1, 2, 4, 7])
    def test_the_partition_is_crc32_of_the_utf8_id_modulo_n(
        self, org: str, partitions: int
    ) -> None:
        assert partition_of(org, partitions) == zlib.crc32(org.encode("utf-8")) % partitions

    def test_known_values_pin_the_rule(self) -> None:
        # CRC-32 (IEEE, as zlib, Java's CRC32, Go's crc32.ChecksumIEEE): a publisher in
        # another language must agree
        assert zlib.crc32(b"acme") == 0x05C4BA3E
        assert partition_of("acme", 4) == 2
        assert commands_stream_for("acme", "apikeys.commands", 4) == "apikeys.commands.2"

    def test_one_partition_is_the_commands_stream_itself(self) -> None:
        assert commands_stream_for("acme", "apikeys.commands", 1) == "apikeys.commands"
        assert partition_streams("apikeys.commands", 1) == ["apikeys.commands"]

    def test_n_partitions_are_numbered_streams(self) -> None:
        assert partition_streams("apikeys.commands", 3) == [
            "apikeys.commands.0",
            "apikeys.commands.1",
            "apikeys.commands.2",
        ]
        assert partition_stream("x", 2, 3) == "x.2"

    def test_zero_partitions_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            partition_of("acme", 0)


class TestFairShare:
    @pytest.mark.parametrize(
        ("partitions", "live", "share"),
        [(4, 1, 4), (4, 2, 2), (4, 3, 2), (4, 4, 1), (4, 8, 1), (1, 3, 1), (4, 0, 4)],
    )
    def test_a_replica_takes_at_most_ceil_partitions_over_live_replicas(
        self, partitions: int, live: int, share: int
    ) -> None:
        assert fair_share(partitions, live) == share


class TestPartitionSettings:
    def test_default_is_one_partition_on_the_commands_stream(self) -> None:
        settings = KeysSettings.from_env({})
        assert settings.partitions == 1
        assert settings.partitions_key == "apikeys.partitions"
        assert settings.partition_streams() == ["apikeys.commands"]
        assert settings.lease_ms == 3000

    def test_partitions_lease_and_key_from_the_environment(self) -> None:
        settings = KeysSettings.from_env(
            {"APIKEYS_PARTITIONS": "4", "APIKEYS_LEASE_MS": "1500", "APIKEYS_PARTITIONS_KEY": "k"}
        )
        assert settings.partitions == 4
        assert settings.lease_ms == 1500
        assert settings.partitions_key == "k"
        assert settings.partition_streams()[-1] == "apikeys.commands.3"

    @pytest.mark.parametrize(
        ("name", "value"), [("APIKEYS_PARTITIONS", "0"), ("APIKEYS_LEASE_MS", "100")]
    )
    def test_out_of_range_values_are_refused(self, name: str, value: str) -> None:
        with pytest.raises(ValueError, match=name):
            KeysSettings.from_env({name: value})
