"""Every throughput figure of the product with one command: a table of measured, target,
same-run baseline and ratio, also written as JSON to benchmarks/results/latest.json.

    .venv/bin/python benchmarks/run_all.py            # everything (a few minutes)
    .venv/bin/python benchmarks/run_all.py --quick    # about a minute: end-to-end commands/s on
                                                      # SQLite, HTTP checks/s and idle CPU
                                                      # (5 s window), with baselines
    .venv/bin/python benchmarks/run_all.py --e2e      # only CPU per accepted command and
                                                      # end-to-end vs raw Redis (SQLite and
                                                      # PostgreSQL, 20,000 commands each),
                                                      # also written to results/e2e-cost-latest.json
The full run also measures checks per CPU-second with 2 HTTP workers against one process
(benchmarks/http_workers.py), times the first command after a restart
(benchmarks/restart_cost.py) and imports 1,000,000 keys with `apikeys import`
(benchmarks/bulk_import.py, several minutes).
Options: --postgres URL (default postgresql://postgres@127.0.0.1:5432/test; 'none' to skip).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import (  # noqa: E402
    bulk_import,
    http_workers,
    idle_cpu,
    pipeline,
    restart_cost,
    trimming,
)

RESULTS = ROOT / "benchmarks" / "results"


def postgres_reachable(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=2):
            return True
    except Exception:
        return False


def check_rows(quick: bool) -> list[dict[str, Any]]:
    """The read-side figures, from benchmarks/checks.py run in a process of its own."""
    args = [sys.executable, str(ROOT / "benchmarks" / "checks.py")]
    if quick:
        args.append("--quick")
    subprocess.run(args, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    rows = json.loads((RESULTS / "checks-latest.json").read_text())["rows"]
    if quick:
        rows = [r for r in rows if r["figure"].startswith("HTTP")]
    return rows


def worst_case_rows() -> list[dict[str, Any]]:
    """The event loop's longest stalls for the worst inputs within the limits, from
    benchmarks/worst_case_inputs.py run in a process of its own (it holds large models)."""
    args = [sys.executable, str(ROOT / "benchmarks" / "worst_case_inputs.py"), "--json"]
    done = subprocess.run(args, check=True, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("figure", "measured", "target", "same-run baseline", "ratio")
    lines = [header] + [
        (
            r["figure"],
            f"{fmt(r['measured'])} {r.get('unit', '')}".strip(),
            r["target"],
            f"{fmt(r['baseline'])} ({r.get('baseline_name', '')})"
            if r.get("baseline")
            else r.get("baseline_name", "") or "-",
            fmt(r.get("ratio")),
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--e2e", action="store_true", help="only the end-to-end cost rows")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    started = time.perf_counter()
    postgres = (
        None if args.postgres == "none" or not postgres_reachable(args.postgres) else args.postgres
    )
    if args.e2e:
        rows = pipeline.cost_figures(20_000, postgres)
        print_table(rows)
        _print_shares(rows)
        when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        document = {"when": when, "postgres": bool(postgres), "rows": rows}
        (RESULTS / "e2e-cost-latest.json").write_text(json.dumps(document, indent=2) + "\n")
        return
    rows = pipeline.figures(args.quick, postgres)
    if not args.quick:
        rows.append(trimming.row())  # trimming on vs off, alternating runs
    rows += check_rows(args.quick)
    if not args.quick:
        rows.append(http_workers.row())  # 2 HTTP workers against one process, alternating
    rows.append(idle_cpu.row(seconds=5.0 if args.quick else 10.0))
    if not args.quick:
        rows += worst_case_rows()
        rows += restart_cost.figures(postgres)
        rows.append(bulk_import.row())
    print_table(rows)
    _print_shares(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "latest-quick.json" if args.quick else "latest.json"
    (RESULTS / name).write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "quick": args.quick,
                "postgres": bool(postgres),
                "seconds": round(time.perf_counter() - started, 1),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to benchmarks/results/{name} in {time.perf_counter() - started:.0f} s")


def _print_shares(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if "cpu_share" in row:
            shares = ", ".join(f"{role} {share:.2f}" for role, share in row["cpu_share"].items())
            print(f"cores used during '{row['figure']}': {shares} (2 on this machine)")


if __name__ == "__main__":
    main()
