"""Export the full event history from the event store as JSON lines, in position order, in
the same format as the events stream (the relay's feed, without Redis)."""

from __future__ import annotations

import json
from typing import TextIO

from services.keys.store import ApiKeysApplication
from services.keys.streams.feed import EventFeed


def export_events(
    event_store_url: str,
    out: TextIO,
    *,
    since: int = 0,
    organization_id: str | None = None,
    progress: TextIO | None = None,
    batch_size: int = 2000,
) -> int:
    """Write every published event after position `since`; return how many were written."""
    app = ApiKeysApplication(event_store_url)
    try:
        last = app.recorder.max_notification_id() or 0
        feed = EventFeed(app, read_up_to=since, batch_size=batch_size)
        written = 0
        while True:
            before = feed.read_up_to
            for _, data in feed.read_batch():
                if organization_id and json.loads(data)["organization_id"] != organization_id:
                    continue
                out.write(data.decode())
                out.write("\n")
                written += 1
            if progress is not None and last:
                progress.write(f"\rexported {written} events, position {feed.read_up_to}/{last}")
            if feed.read_up_to == before:
                break
        if progress is not None:
            progress.write("\n")
        return written
    finally:
        app.close()
