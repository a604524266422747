"""Runs after the browser tests of this folder: once their browser is closed, the thread has no
event loop left running, so the asyncio tests of the rest of the run can start theirs."""

from __future__ import annotations

import asyncio


def test_no_event_loop_is_left_running_after_the_browser_tests() -> None:
    async def nothing() -> int:
        return 1

    assert asyncio.run(nothing()) == 1
