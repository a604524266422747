"""The collector paused for a batch (``collector.paused``) and resumed for a wait of unknown
length inside it (``collector.resumed``), each leaving it as it found it."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator

import pytest

from services.common import collector
from services.common.resilience import Outage, keep_trying


@pytest.fixture(autouse=True)
def enabled_after() -> Iterator[None]:
    yield
    gc.enable()


def test_paused_then_running_again_even_after_an_error() -> None:
    with pytest.raises(RuntimeError), collector.paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()


def test_resumed_inside_a_pause_and_paused_again_after() -> None:
    with collector.paused():
        with collector.resumed():
            assert gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_resumed_leaves_a_running_collector_running() -> None:
    with collector.resumed():
        assert gc.isenabled()
    assert gc.isenabled()


async def test_an_outage_is_waited_out_with_the_collector_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bool] = []  # the collector's state during each backoff
    calls = 0
    real_sleep = asyncio.sleep

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("down")
        return "up"

    async def watched_sleep(delay: float) -> None:
        seen.append(gc.isenabled())
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", watched_sleep)
    with collector.paused():
        answer = await keep_trying(flaky, Outage("test", logging.getLogger("t")), lambda: False)
        assert not gc.isenabled()
    assert answer == "up" and seen == [True, True]
