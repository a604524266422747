"""`apikeys import FILE`: progress on standard error while it runs; each rejected line
(`line N: code: message`) and the closing summary on standard output. Exit status 0 when
every line was accepted or already present, 1 when any was not, 2 on a usage error."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from typing import IO, BinaryIO

from redis.exceptions import RedisError

from services.bulk_import.lines import batches
from services.bulk_import.sender import NoAnswer, Sender, Tally
from services.common.redis_client import connect

PROGRESS_SECONDS_TTY = 0.5
PROGRESS_SECONDS_LOG = 5.0


def add_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("import", help="import existing keys from JSON lines")
    parser.add_argument("file", metavar="FILE", help="JSON lines, one key a line ('-': stdin)")
    parser.add_argument(
        "--window", type=int, default=16, help="most commands awaiting their result (16)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds without any result before giving up"
    )
    parser.set_defaults(func=import_command)


def import_command(args: argparse.Namespace) -> int:
    from services.keys.settings import KeysSettings

    if args.window < 1 or args.timeout <= 0:
        print("apikeys import: --window and --timeout must be positive", file=sys.stderr)
        return 2
    try:
        source = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as error:
        print(f"apikeys import: {error}", file=sys.stderr)
        return 2
    settings = KeysSettings.from_env()
    with contextlib.closing(source):
        return asyncio.run(
            run_import(
                source,
                settings.redis_url,
                settings.commands_stream,
                settings.results_stream,
                window=args.window,
                timeout=args.timeout,
            )
        )


async def run_import(
    source: BinaryIO,
    redis_url: str,
    commands_stream: str,
    results_stream: str,
    *,
    window: int = 16,
    timeout: float = 300.0,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr

    def rejected(line: int, code: str, message: str) -> None:
        print(f"line {line}: {code}: {message}", file=out)

    redis = connect(redis_url)
    sender = Sender(
        redis,
        commands_stream,
        results_stream,
        window=window,
        answer_timeout=timeout,
        on_rejection=rejected,
    )
    progress = asyncio.create_task(show_progress(sender.tally, err))
    items: Iterator = batches(source)
    started = time.monotonic()
    failure = None
    try:
        await sender.run(items)
    except NoAnswer as error:
        failure = str(error)
    except (OSError, RedisError) as error:  # Redis unreachable
        failure = f"Redis at {redis_url}: {error}"
    finally:
        progress.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await progress
        await redis.aclose()
    tally = sender.tally
    print(progress_line(tally, time.monotonic() - started), file=err, flush=True)
    print(summary(tally, time.monotonic() - started), file=out, flush=True)
    if failure is not None:
        print(f"apikeys import: stopped: {failure}", file=err)
        return 1
    return 0 if tally.rejected == 0 and tally.unanswered == 0 else 1


async def show_progress(tally: Tally, err: IO[str]) -> None:
    tty = err.isatty()
    started = time.monotonic()
    while True:
        await asyncio.sleep(PROGRESS_SECONDS_TTY if tty else PROGRESS_SECONDS_LOG)
        line = progress_line(tally, time.monotonic() - started)
        print(f"\r{line}" if tty else line, end="" if tty else "\n", file=err, flush=True)


def progress_line(tally: Tally, seconds: float) -> str:
    rate = tally.answered / seconds if seconds > 0 else 0.0
    return (
        f"{tally.lines:,} lines read, {tally.answered:,} answered "
        f"({tally.accepted:,} accepted, {tally.already_present:,} already present, "
        f"{tally.rejected:,} rejected), {rate:,.0f} keys/s"
    )


def summary(tally: Tally, seconds: float) -> str:
    return (
        f"import: {tally.lines} lines in {seconds:.1f} s: {tally.accepted} accepted, "
        f"{tally.already_present} already present, {tally.rejected} rejected, "
        f"{tally.unanswered} unanswered ({tally.commands} commands)"
    )
