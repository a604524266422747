"""Subscriber: follow the events stream, appending one JSON line per event to a file.

    REDIS_URL=redis://127.0.0.1:6380/0 python examples/subscriber.py events.jsonl

The file is also where it resumes from: its last line's position. An event's line is written
and flushed before the next is read, so a restart (even after SIGKILL) neither skips nor
repeats an event. If the stream no longer holds the events after that position, it exits with
status 3 and says how to catch up.
"""

import asyncio
import json
import os
import sys
from pathlib import Path

import msgspec

from client import ApiKeysClient, EventsMissing


def last_position(path: Path) -> int:
    if not path.exists():
        return 0
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return int(json.loads(lines[-1])["position"]) if lines else 0


async def follow(path: Path) -> None:
    async with ApiKeysClient() as client:
        with path.open("ab") as out:
            async for event in client.events(after=last_position(path)):
                out.write(msgspec.json.encode(event) + b"\n")
                out.flush()
                os.fsync(out.fileno())


if __name__ == "__main__":
    try:
        asyncio.run(follow(Path(sys.argv[1])))
    except EventsMissing as missing:
        print(missing, file=sys.stderr)
        sys.exit(3)
    except KeyboardInterrupt:
        pass
