"""The cycle collector kept out of bulk work: a batch allocates many tracked objects, and each
collection they would trigger walks every tracked object of the process (the caches of
aggregates included). What a batch makes is freed by reference counting; the collector runs
once it is resumed. A wait of unknown length inside a paused stretch (an outage's backoff)
runs with the collector resumed, so a long outage does not pile up cyclic garbage.

Pauses overlap: the partitions' consumers pause across awaits on one event loop, the processor
and the relay in threads. So pauses are counted, not nested: the collector is off while at
least one pause holds and back to how the first one found it when the last one ends, whatever
the order in which they start, end or resume."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_holds = 0  # pauses in effect (a resumed pause does not count meanwhile)
_was_enabled = True  # the collector's state when the first of them began


def _hold() -> None:
    global _holds, _was_enabled
    with _lock:
        if _holds == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holds += 1


def _release() -> bool:
    """One pause fewer; False (nothing done) when none holds."""
    global _holds
    with _lock:
        if _holds == 0:
            return False
        _holds -= 1
        if _holds == 0 and _was_enabled:
            gc.enable()
        return True


@contextlib.contextmanager
def paused() -> Iterator[None]:
    _hold()
    try:
        yield
    finally:
        _release()


@contextlib.contextmanager
def resumed() -> Iterator[None]:
    """Inside a paused stretch, its pause stops counting for a while: the collector runs
    unless another pause holds. Outside any pause it changes nothing."""
    released = _release()
    try:
        yield
    finally:
        if released:
            _hold()
