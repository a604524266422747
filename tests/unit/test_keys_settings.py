"""The keys service's stream limits, read once from the environment."""

from __future__ import annotations

import pytest

from services.keys.settings import KeysSettings


def test_stream_limits_default_to_the_documented_values() -> None:
    settings = KeysSettings.from_env({})
    assert settings.results_retention_seconds == 86_400
    assert settings.results_max_entries == 1_000_000
    assert settings.events_retention_seconds == 604_800
    assert settings.events_max_entries == 1_000_000
    assert settings.dead_letter_max_entries == 100_000
    assert settings.trim_streams


def test_stream_limits_are_read_from_the_environment() -> None:
    settings = KeysSettings.from_env(
        {
            "APIKEYS_RESULTS_RETENTION_SECONDS": "60",
            "APIKEYS_RESULTS_MAX_ENTRIES": "10",
            "APIKEYS_EVENTS_RETENTION_SECONDS": "3600",
            "APIKEYS_EVENTS_MAX_ENTRIES": "20",
            "APIKEYS_DEAD_LETTER_MAX_ENTRIES": "5",
            "APIKEYS_TRIM_STREAMS": "false",
        }
    )
    assert (settings.results_retention_seconds, settings.results_max_entries) == (60, 10)
    assert (settings.events_retention_seconds, settings.events_max_entries) == (3600, 20)
    assert settings.dead_letter_max_entries == 5
    assert not settings.trim_streams


@pytest.mark.parametrize(
    "name",
    [
        "APIKEYS_RESULTS_MAX_ENTRIES",
        "APIKEYS_EVENTS_MAX_ENTRIES",
        "APIKEYS_DEAD_LETTER_MAX_ENTRIES",
    ],
)
def test_a_stream_keeps_at_least_one_entry(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        KeysSettings.from_env({name: "0"})
