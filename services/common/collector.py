"""The cycle collector kept out of bulk work: a batch allocates many tracked objects, and each
collection they would trigger walks every tracked object of the process (the caches of
aggregates included). What a batch makes is freed by reference counting; the collector runs
once it is resumed. A wait of unknown length inside a paused stretch (an outage's backoff)
runs with the collector resumed, so a long outage does not pile up cyclic garbage."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def resumed() -> Iterator[None]:
    """The collector running again for a while inside a paused stretch (and left as it was)."""
    disabled = not gc.isenabled()
    if disabled:
        gc.enable()
    try:
        yield
    finally:
        if disabled:
            gc.disable()
