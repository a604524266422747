"""How the read model and the cycle collector get along: the model makes no reference cycles, so
reference counting alone frees whatever an event replaces, and the collector is kept off it.

Folding events and serialising the model allocate many GC-tracked objects; each collection they
trigger would walk every tracked object of the process (the whole model), so bulk work runs with
the collector paused. A loaded model is frozen out of the collector's reach, so a full collection
does not stop every request while it walks millions of read-model objects. A model that grows
while it runs (a bulk import, a catch-up) is frozen again each time it has gained
``FREEZE_GROWTH`` keys: without that, each full collection walks every object the growth added
(measured over a million imported keys: six million objects, 24 passes of about 0.8 s).
Frozen objects are still freed by reference counting; only cycles among them would outlive
their use, and the model makes none. Freezes are bounded by the model's growth, not by time.

Freeing is work too: dropping the compiled grants of a thousand holders of a changed role frees
millions of dict entries in one go. The live model therefore keeps what the fold drops
(``ReadModel.released``) and ``release`` frees it a slice at a time, taking apart only the
containers nothing else refers to.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import sys
from collections.abc import Iterator

from services.projections.model.queries import key_grants
from services.projections.model.state import GRANT_CACHE_LIMIT, ReadModel


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


def settle(model: ReadModel) -> None:
    """Work out every key's grants (within the cache's bound), then freeze the whole model."""
    for key_id in itertools.islice(model.keys, GRANT_CACHE_LIMIT - 1):
        key_grants(model, key_id)
    gc.collect()
    gc.freeze()


FREEZE_GROWTH = 20_000  # keys gained by the model between two freezes


class GrowthFreeze:
    """Freezes the model's new objects out of the collector's full passes as it grows."""

    def __init__(self, growth: int = FREEZE_GROWTH) -> None:
        self.growth = growth
        self.frozen_at: int | None = None  # the model's key count at the last freeze
        self.freezes = 0

    def check(self, model: ReadModel) -> bool:
        """Freeze (young generations collected first) once the model has gained ``growth``
        keys since the last freeze; True when it did."""
        size = len(model.keys)
        if self.frozen_at is None or size < self.frozen_at:  # first look, or a smaller model
            self.frozen_at = size
            return False
        if size - self.frozen_at < self.growth:
            return False
        gc.collect(1)
        gc.freeze()
        self.frozen_at = size
        self.freezes += 1
        return True


RELEASE_STEP = 2_000  # items freed between two yields to the event loop
_SMALL = 64  # a container this small is freed whole


async def release(model: ReadModel, step: int = RELEASE_STEP) -> None:
    """Free what the fold dropped, a slice at a time, yielding to the event loop between
    slices. Only containers referred to from nowhere else are taken apart."""
    pending = model.released
    if not pending:
        return
    model.released = []  # what the fold drops meanwhile waits for the next call
    done = 0
    while pending:
        top = pending.pop()
        if sys.getrefcount(top) <= 2:  # this name and the call's argument: nothing else has it
            parts = getattr(top, "parts", None)
            if parts is not None:  # compiled grants, an index: what they hold, one by one
                pending.extend(parts())
                del parts
            if isinstance(top, dict):
                while top:
                    _, value = top.popitem()
                    _keep_apart(pending, value)
                    del value
                    done += 1
                    if done % step == 0:
                        await asyncio.sleep(0)
            elif isinstance(top, list):
                while top:
                    _keep_apart(pending, top.pop())
                    done += 1
                    if done % step == 0:
                        await asyncio.sleep(0)
            elif type(top) is tuple and len(top) <= 8:
                pending.extend(top)  # a grant block: its maps, one by one
        del top
        done += 1
        if done % step == 0:
            await asyncio.sleep(0)


def _keep_apart(pending: list[object], value: object) -> None:
    """Put a large container, or a small tuple that may hold large ones (a grant block), aside
    to be taken apart, so that dropping it here is cheap."""
    if isinstance(value, (dict, list, tuple)) and (
        len(value) > _SMALL or (type(value) is tuple and len(value) <= 8)
    ):
        pending.append(value)
