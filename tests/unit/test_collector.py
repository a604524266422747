"""The collector paused for a batch (``collector.paused``) and resumed for a wait of unknown
length inside it (``collector.resumed``), each leaving it as it found it."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
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


def test_overlapping_pauses_leave_the_collector_running_whatever_the_order() -> None:
    # a thread's pause (relay, processor) begins first and ends while a consumer's pause,
    # begun after it, waits out an outage resumed: once all have ended the collector runs
    first, second = collector.paused(), collector.paused()
    first.__enter__()
    second.__enter__()
    waiting = collector.resumed()
    waiting.__enter__()
    assert not gc.isenabled()  # the other pause still holds
    first.__exit__(None, None, None)
    assert gc.isenabled()  # none holds while the outage is waited out
    waiting.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_pauses_from_threads_at_once_leave_the_collector_running() -> None:
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(2000):
            with collector.paused(), collector.resumed():
                pass

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.isenabled()


def test_a_collector_off_before_the_first_pause_stays_off() -> None:
    gc.disable()
    with collector.paused(), collector.paused():
        pass
    assert not gc.isenabled()
