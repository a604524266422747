"""Commands per second through ``client.send`` with 50 concurrent senders (each awaits its
result before sending the next), against the raw pipeline in the same run: the same number of
commands XADDed in pipelines of 1,000 and the results stream awaited until it holds them all.
Both against one keys service on SQLite; the rounds alternate and the medians are printed.

    .venv/bin/python benchmarks/client_send.py [--commands 3000] [--senders 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid

from benchmarks.harness import Stack, xadd_all
from client import ApiKeysClient, ClientSettings
from contracts.codec import json_encoder
from contracts.commands import EnableApiModule
from contracts.streams import COMMANDS_STREAM, RESULTS_STREAM

TARGET_RATIO = 0.5  # client.send with 50 senders: at least half the raw pipeline's rate


def commands(prefix: str, count: int) -> list[EnableApiModule]:
    """One command per organization (each its own aggregate), as many upstreams would send."""
    return [
        EnableApiModule(command_id=uuid.uuid4().hex, organization_id=f"{prefix}-{n}")
        for n in range(count)
    ]


async def through_client(settings: ClientSettings, count: int, senders: int) -> float:
    work = commands(f"client-{uuid.uuid4().hex[:8]}", count)
    async with ApiKeysClient(settings) as client:
        await client.publisher()  # started before the clock: the reader is ready

        async def sender(share: list[EnableApiModule]) -> None:
            for command in share:
                result = await client.send(command, timeout=60)
                assert result.status == "accepted", result

        started = time.perf_counter()
        await asyncio.gather(*(sender(work[i::senders]) for i in range(senders)))
        return count / (time.perf_counter() - started)


def raw_pipeline(stack: Stack, count: int) -> float:
    payloads = [json_encoder.encode(c) for c in commands(f"raw-{uuid.uuid4().hex[:8]}", count)]
    before = stack.redis.xlen(RESULTS_STREAM)
    started = time.perf_counter()
    xadd_all(stack.redis, COMMANDS_STREAM, payloads)
    while stack.redis.xlen(RESULTS_STREAM) < before + count:
        time.sleep(0.002)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=3000)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # results kept (no trimming) so that the baseline can count them
    stack = Stack(extra_env={"APIKEYS_TRIM_STREAMS": "false"})
    try:
        stack.start_keys()
        settings = ClientSettings(redis_url=stack.redis_server.url)
        client_rates, raw_rates = [], []
        for _ in range(args.rounds):
            raw_rates.append(raw_pipeline(stack, args.commands))
            client_rates.append(asyncio.run(through_client(settings, args.commands, args.senders)))
    finally:
        stack.stop()
    measured, baseline = statistics.median(client_rates), statistics.median(raw_rates)
    report = {
        "figure": f"commands/s through client.send, {args.senders} concurrent senders",
        "measured": round(measured),
        "baseline_raw_xadd_pipeline": round(baseline),
        "ratio": round(measured / baseline, 2),
        "target_ratio": TARGET_RATIO,
        "rounds": {
            "client": [round(r) for r in client_rates],
            "raw": [round(r) for r in raw_rates],
        },
    }
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"client.send ({args.senders} senders): {measured:,.0f} commands/s; raw XADD pipeline "
        f"(same run): {baseline:,.0f} commands/s; ratio {measured / baseline:.2f} "
        f"(target >= {TARGET_RATIO})"
    )


if __name__ == "__main__":
    main()
