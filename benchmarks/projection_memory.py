"""The projection's memory per key: the read model's RSS growth at 1,000, 5,000 and 10,000
keys, each in a fresh process (``check_memory.py``: every key folded and its grants compiled, as
the service holds it under load). The slope between two sizes is bytes per key; the model grows
only with the data it holds when the slope stays the same from one size to the next.

    .venv/bin/python benchmarks/projection_memory.py [--keys 1000,5000,10000] [--json]

Target: the slope from the middle size to the largest within 10% of the slope from the smallest
to the middle (linear growth). Same-run baseline: the same grants as a plain set of (key,
location, permission) tuples, and the keys' rows as the view store holds them (JSON bytes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def measure(what: str, keys: int) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.check_memory", what, "--keys", str(keys)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out))


def slope(low: dict[str, int], high: dict[str, int], keys: tuple[int, int], field: str) -> float:
    return (high[field] - low[field]) / (keys[1] - keys[0])


def figures(sizes: list[int]) -> dict[str, Any]:
    model = {n: measure("model", n) for n in sizes}
    baseline = {n: measure("baseline", n) for n in sizes}
    for n in sizes:
        m, b = model[n], baseline[n]
        print(
            f"{n:>7,} keys: RSS growth {m['rss_growth'] / 2**20:7.1f} MB "
            f"({m['rss_folded'] / 2**20:.1f} MB for the states alone), "
            f"{m['grants']:,} grants; baseline tuples {b['rss_growth'] / 2**20:.1f} MB; "
            f"stored rows {m['state_json_bytes'] / 2**20:.1f} MB",
            file=sys.stderr,
            flush=True,
        )
    steps = list(zip(sizes, sizes[1:], strict=False))
    slopes = [slope(model[a], model[b], (a, b), "rss_growth") for a, b in steps]
    states = [slope(model[a], model[b], (a, b), "rss_folded") for a, b in steps]
    base = [slope(baseline[a], baseline[b], (a, b), "rss_growth") for a, b in steps]
    stored = model[sizes[-1]]["state_json_bytes"] / sizes[-1]
    return {
        "sizes": sizes,
        "bytes_per_key": [round(s) for s in slopes],
        "states_only_bytes_per_key": [round(s) for s in states],
        "baseline_tuples_bytes_per_key": [round(s) for s in base],
        "stored_row_bytes_per_key": round(stored),
        "grants_per_key": model[sizes[-1]]["grants"] // sizes[-1],
        "linear": abs(slopes[-1] - slopes[0]) <= 0.1 * abs(slopes[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", default="1000,5000,10000", help="sizes, comma-separated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.keys.split(","))
    found = figures(sizes)
    if args.json:
        print(json.dumps(found, indent=2))
        return
    spans = [f"{a:,}->{b:,}" for a, b in zip(sizes, sizes[1:], strict=False)]
    for span, per_key, states, base in zip(
        spans,
        found["bytes_per_key"],
        found["states_only_bytes_per_key"],
        found["baseline_tuples_bytes_per_key"],
        strict=True,
    ):
        print(
            f"projection bytes per key, {span} keys: {per_key:,} B/key "
            f"({states:,} B/key for the states alone; same-run baseline: tuples of the same "
            f"grants {base:,} B/key, stored row {found['stored_row_bytes_per_key']:,} B/key)"
        )
    verdict = "ok" if found["linear"] else "NOT LINEAR"
    print(
        f"growth per key from the first span to the last: {found['bytes_per_key'][0]:,} -> "
        f"{found['bytes_per_key'][-1]:,} B/key (target: within 10%) {verdict}"
    )


if __name__ == "__main__":
    main()
