"""The HTTP connection limits both services read from the environment."""

import pytest

from services.common.http_limits import HttpLimits
from services.keys.settings import KeysSettings
from services.projections.runtime.settings import Settings

LIMITS = {
    "APIKEYS_HTTP_MAX_CONNECTIONS": "300",
    "APIKEYS_HTTP_KEEPALIVE_SECONDS": "2.5",
    "APIKEYS_HTTP_HEADER_TIMEOUT_SECONDS": "1.5",
}


def test_defaults_keep_connections_well_under_1024_descriptors() -> None:
    limits = HttpLimits.from_env({})
    assert limits == HttpLimits(800, 5.0, 5.0)


def test_both_services_read_the_same_limits() -> None:
    expected = HttpLimits(300, 2.5, 1.5)
    assert Settings.from_env(LIMITS).http_limits == expected
    assert KeysSettings.from_env(LIMITS).http_limits == expected


@pytest.mark.parametrize(
    "name, value",
    [
        ("APIKEYS_HTTP_MAX_CONNECTIONS", "0"),
        ("APIKEYS_HTTP_KEEPALIVE_SECONDS", "0"),
        ("APIKEYS_HTTP_HEADER_TIMEOUT_SECONDS", "-1"),
        ("APIKEYS_HTTP_MAX_CONNECTIONS", "many"),
    ],
)
def test_a_limit_that_would_refuse_everyone_is_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        HttpLimits.from_env({name: value})


def test_a_flood_of_refused_connections_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    from services.common.http_protocol import Gate

    gate = Gate(800)
    with caplog.at_level("WARNING", logger="apikeys.http"):
        for _ in range(10_000):
            gate.refuse()
    assert len(caplog.records) == 1
    assert "800 HTTP connections open" in caplog.records[0].getMessage()
