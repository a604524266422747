"""The cycle collector kept out of bulk work: a batch allocates many tracked objects, and each
collection they would trigger walks every tracked object of the process (the caches of
aggregates included). What a batch makes is freed by reference counting; the collector runs
once it is resumed."""

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
