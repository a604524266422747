"""How the read model and the cycle collector get along: the model makes no reference cycles, so
reference counting alone frees whatever an event replaces, and the collector is kept off it.

Folding events and serialising the model allocate many GC-tracked objects; each collection they
trigger would walk every tracked object of the process (the whole model), so bulk work runs with
the collector paused. A loaded model is frozen out of the collector's reach, so a full collection
does not stop every request while it walks millions of read-model objects.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
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
