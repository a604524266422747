"""The projection API's test data: a populated organization (hq > plant > line, a viewer role,
a key with a rotated secret and a disabled one), its tokens, the check-time and a check URL."""

from __future__ import annotations

from datetime import timedelta

from contracts import events as ev
from contracts.tokens import new_token, token_sha256
from tests.support.projection_builders import T0, EventLog

NOW = T0 + timedelta(days=1)
TOKEN = new_token()
OLD_TOKEN = new_token()


def populated() -> EventLog:
    log = EventLog().setup()
    log.location("hq")
    log.location("plant", "hq")
    log.location("line", "plant")
    log.role("viewer", ("view", "location_and_below"), ("edit", "own_items"))
    log.create_key("k1", ["plant"], ["viewer"], secret_sha256=token_sha256(OLD_TOKEN))
    log.key(
        ev.KeySecretRotated,
        "k1",
        secret_sha256=token_sha256(TOKEN),
        previous_secret_sha256=token_sha256(OLD_TOKEN),
        previous_secret_valid_until=NOW + timedelta(hours=1),
    )
    log.create_key("k2", ["hq"], ["viewer"], enabled=False)
    return log


def check_url(key: str = "k1", permission: str = "view", location: str = "line", **extra) -> str:
    query = f"key_id={key}&permission={permission}&location_id={location}"
    return "/v1/check?" + "&".join([query, *(f"{k}={v}" for k, v in extra.items())])
