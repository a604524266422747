"""Pausing the cycle collector around bulk work on the read model.

Folding events and serialising the model allocate many GC-tracked objects and make no reference
cycles; each collection the allocations trigger walks every tracked object of the process (the
whole model), which made up ~45% of a rebuild's fold. Reference counting still frees whatever
is replaced meanwhile.
"""

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
