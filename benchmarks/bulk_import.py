"""Bulk import: N existing keys (already hashed) through `apikeys import FILE` against the whole
product (`python -m services.cli run`, SQLite, embedded Redis), timed from the start of the
import to the moment the last key of every organization answers in `/v1/check`.

    .venv/bin/python benchmarks/bulk_import.py [--keys 1000000] [--organizations 4]
        [--baseline-keys 20000] [--profile DIR]

Target: 1,000,000 keys imported and visible in under 120 s. Same-run baseline: the same kind
of keys through one `CreateApiKey` command each (pipelined XADD of every command, then wait
until the last key is visible), on `--baseline-keys` keys, its rate scaled to N keys. The CPU
each process of the product (and the importer) used during the import is printed with the
machine's load average, since the machine is shared. `--profile DIR` records the keys service,
relay and projection service with py-spy (`pip install py-spy`) during the import (raw stacks,
one file each).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
import redis  # noqa: E402

from benchmarks.harness import xadd_all  # noqa: E402
from benchmarks.product import Product, last_position, wait_projection, wait_results  # noqa: E402
from tests.support.scenario import organization_setup  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TARGET_SECONDS = 120.0
TARGET_KEYS = 1_000_000


def key_line(org: str, index: int) -> dict[str, Any]:
    return {
        "organization_id": org,
        "actor_id": "alice",
        "key_id": f"{org}-key-{index}",
        "name": f"Migrated key {index}",
        "location_ids": ["L1", "L2"],
        "role_ids": ["R0", "R1"],
        "secret_sha256": hashlib.sha256(f"token-{org}-{index}".encode()).hexdigest(),
        "secret_hint": "apk_...old",
    }


def write_lines(path: Path, orgs: list[str], count: int) -> dict[str, str]:
    """`count` key lines, the organizations taking turns; returns each one's last key id."""
    last: dict[str, str] = {}
    with open(path, "w") as out:
        for i in range(count):
            line = key_line(orgs[i % len(orgs)], i)
            last[line["organization_id"]] = line["key_id"]
            out.write(json.dumps(line) + "\n")
    return last


def set_up(product: Product, client: redis.Redis, orgs: list[str]) -> None:
    commands = [c for org in orgs for c in organization_setup(org, locations=4, roles=3)]
    before = client.xlen("apikeys.results")
    xadd_all(client, "apikeys.commands", [json.dumps(c).encode() for c in commands])
    wait_results(client, "apikeys.results", before + len(commands))
    wait_projection(product, last_position(client, "apikeys.results"))


def visible(product: Product, key_id: str) -> bool:
    query = urllib.parse.urlencode({"key_id": key_id, "permission": "perm0", "location_id": "L1"})
    url = f"http://{product.http}/v1/check?{query}"
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310
        return bool(json.loads(answer.read())["allowed"])


def wait_visible(product: Product, key_ids: list[str], timeout: float = 1800.0) -> float:
    deadline = time.monotonic() + timeout
    waiting = list(key_ids)
    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"keys {waiting} not visible in /v1/check")
        waiting = [key_id for key_id in waiting if not visible(product, key_id)]
        if waiting:
            time.sleep(0.05)
    return time.perf_counter()


def baseline_rate(product: Product, client: redis.Redis, count: int) -> tuple[float, float]:
    """Keys per second through one CreateApiKey each, first XADD to the last key visible, and
    the CPU seconds per key the product used meanwhile."""
    org = "baseline"
    set_up(product, client, [org])
    commands = []
    for i in range(count):
        line = key_line(org, i)
        del line["organization_id"], line["actor_id"]
        commands.append(
            {
                "type": "CreateApiKey",
                "command_id": f"base-{i}",
                "organization_id": org,
                "actor_id": "alice",
                **line,
            }  # fmt: skip
        )
    payloads = [json.dumps(c).encode() for c in commands]
    processes = product.tree()
    before = cpu_seconds(processes)
    started = time.perf_counter()
    xadd_all(client, "apikeys.commands", payloads)
    finished = wait_visible(product, [commands[-1]["key_id"]])
    used = sum(cpu_seconds(processes).values()) - sum(before.values())
    return count / (finished - started), used / count


def cpu_seconds(processes: dict[str, psutil.Process]) -> dict[str, float]:
    found = {}
    for role, process in processes.items():
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            found[role] = float(times.user + times.system + times.children_user)
    return found


def start_profilers(product: Product, directory: Path) -> list[subprocess.Popen[bytes]]:
    directory.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).parent / "py-spy"
    profilers = []
    for role, process in product.tree().items():
        if role in ("keys", "relay", "projections"):
            out = directory / f"{role}.txt"
            profilers.append(
                subprocess.Popen(
                    [
                        str(py_spy),
                        "record",
                        "--pid",
                        str(process.pid),
                        "--format",
                        "raw",
                        "--rate",
                        "50",
                        "--output",
                        str(out),
                        "--nonblocking",
                    ],  # fmt: skip
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    return profilers


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        profiler.send_signal(2)  # SIGINT: py-spy writes its file and exits
    for profiler in profilers:
        try:
            profiler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            profiler.kill()


def run_import(product: Product, path: Path) -> subprocess.Popen[bytes]:
    env = {**product.env, "REDIS_URL": product.redis_url}
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "import", str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def measure(keys: int, organizations: int, baseline_keys: int, profile: Path | None) -> dict:
    orgs = [f"org{i}" for i in range(organizations)]
    with tempfile.TemporaryDirectory(prefix="apikeys-import-") as tmp:
        path = Path(tmp) / "keys.jsonl"
        last = write_lines(path, orgs, keys)
        with Product() as product:
            client = redis.Redis.from_url(product.redis_url)
            baseline, baseline_cpu = (
                baseline_rate(product, client, baseline_keys) if baseline_keys else (None, None)
            )
            set_up(product, client, orgs)
            processes = product.tree()
            profilers = start_profilers(product, profile) if profile else []
            load_before = os.getloadavg()
            before = cpu_seconds(processes)
            started = time.perf_counter()
            importer = run_import(product, path)
            processes["importer"] = psutil.Process(importer.pid)
            importer_cpu = 0.0
            while importer.poll() is None:
                importer_cpu = cpu_seconds({"i": processes["importer"]}).get("i", importer_cpu)
                time.sleep(0.05)
            imported = time.perf_counter()
            finished = wait_visible(product, list(last.values()))
            after = cpu_seconds(processes)
            after["importer"] = importer_cpu
            before["importer"] = 0.0
            load_after = os.getloadavg()
            stop_profilers(profilers)
            summary = importer.stdout.read().decode().strip() if importer.stdout else ""
            second = second_run(product, path)
            client.close()
    return {
        "keys": keys,
        "seconds": finished - started,
        "import_seconds": imported - started,
        "exit_status": importer.returncode,
        "summary": summary.splitlines()[-1] if summary else "",
        "second_run": second,
        "baseline_rate": baseline,
        "baseline_cpu_per_key": baseline_cpu,
        "cpu": {role: after[role] - before.get(role, 0.0) for role in after},
        "load": (load_before, load_after),
    }


def second_run(product: Product, path: Path) -> dict[str, Any]:
    """The same file again: every line already present, nothing stored."""
    started = time.perf_counter()
    done = run_import(product, path)
    out, _ = done.communicate()
    return {
        "seconds": time.perf_counter() - started,
        "exit_status": done.returncode,
        "summary": out.decode().strip().splitlines()[-1] if out else "",
    }


def report(result: dict[str, Any]) -> dict[str, Any]:
    keys, seconds = result["keys"], result["seconds"]
    scaled_target = TARGET_SECONDS * keys / TARGET_KEYS
    print(f"bulk import of {keys:,} keys (`apikeys import FILE` against `apikeys run`, SQLite)")
    print(f"  importer: {result['summary']} (exit status {result['exit_status']})")
    print(
        f"  imported and visible in /v1/check: {seconds:.1f} s ({keys / seconds:,.0f} keys/s; "
        f"the importer had every answer after {result['import_seconds']:.1f} s)"
    )
    print(f"  target: {scaled_target:.0f} s for {keys:,} keys (120 s for 1,000,000)")
    rate = result["baseline_rate"]
    baseline_seconds = keys / rate if rate else None
    if rate:
        print(
            f"  same-run baseline, one CreateApiKey per key: {rate:,.0f} keys/s, "
            f"so {baseline_seconds:.0f} s for {keys:,} keys "
            f"(ratio {baseline_seconds / seconds:.1f}x)"
        )
    second = result["second_run"]
    print(
        f"  second run of the same file: {second['seconds']:.1f} s, {second['summary']} "
        f"(exit status {second['exit_status']})"
    )
    cpu = result["cpu"]
    shares = ", ".join(f"{role} {value / seconds:.2f}" for role, value in cpu.items())
    print(f"  cores used during the import: {shares} (2 on this machine)")
    total = sum(cpu.values())
    per_key = 1e6 * total / keys
    print(f"  CPU seconds: {total:.0f} in all, {per_key:.0f} us per key", end="")
    if result["baseline_cpu_per_key"]:
        base = 1e6 * result["baseline_cpu_per_key"]
        print(f" (one CreateApiKey per key: {base:.0f} us per key, ratio {base / per_key:.1f}x)")
    else:
        print()
    (b1, b5, _), (a1, a5, _) = result["load"]
    print(f"  load average before {b1:.2f} (5 min {b5:.2f}), after {a1:.2f} (5 min {a5:.2f})")
    return {
        "figure": f"bulk import, {keys:,} keys to visible in /v1/check",
        "measured": round(seconds, 1),
        "unit": "s",
        "target": f"< {scaled_target:.0f} s",
        "baseline": round(baseline_seconds, 1) if baseline_seconds else None,
        "baseline_name": "one CreateApiKey per key, same run, scaled",
        "ratio": round(baseline_seconds / seconds, 2) if baseline_seconds else None,
        "cpu_share": {role: round(value / seconds, 2) for role, value in cpu.items()},
        "cpu_us_per_key": round(per_key),
        "baseline_cpu_us_per_key": round(1e6 * result["baseline_cpu_per_key"])
        if result["baseline_cpu_per_key"]
        else None,
        "load_average": result["load"],
        "second_run": second,
    }


def row(keys: int = TARGET_KEYS, baseline_keys: int = 20_000) -> dict[str, Any]:
    return report(measure(keys, 4, baseline_keys, None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=TARGET_KEYS)
    parser.add_argument("--organizations", type=int, default=4)
    parser.add_argument("--baseline-keys", type=int, default=20_000, help="0: no baseline")
    parser.add_argument("--profile", type=Path, help="write py-spy raw stacks here")
    args = parser.parse_args()
    row = report(measure(args.keys, args.organizations, args.baseline_keys, args.profile))
    row["when"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bulk-import-latest.json").write_text(json.dumps(row, indent=2) + "\n")
    print("written to benchmarks/results/bulk-import-latest.json")


if __name__ == "__main__":
    main()
