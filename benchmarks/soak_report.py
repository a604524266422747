"""The soak's printing and arithmetic: sample lines, growth per hour (least-squares slope),
CPU shares, and the final summary."""

from __future__ import annotations

from typing import Any

from benchmarks.product import SERVICE_ROLES


def print_sample(s: dict[str, Any]) -> None:
    rss = " ".join(f"{role} {mb:.1f}" for role, mb in s["rss_mb"].items())
    streams_mb = sum(v["memory_mb"] for v in s["streams"].values())
    lengths = "/".join(f"{v['xlen']}" for v in s["streams"].values())
    p99 = s["check_p99_ms_window"]
    print(
        f"t={s['t']:6.0f}s sent {s['sent']} results {s['received']} checks {s['checks']}"
        f" | RSS MB: {rss} | Redis used {s['redis_used_memory_mb']:.1f} MB, streams"
        f" {streams_mb:.1f} MB, XLEN cmd/res/ev/dl {lengths}"
        f" | check p99 {'-' if p99 is None else f'{p99:.1f}'} ms",
        flush=True,
    )


def series(samples: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Every memory figure over time, in MB."""
    out: dict[str, list[tuple[float, float]]] = {}
    for s in samples:
        streams_mb = sum(v["memory_mb"] for v in s["streams"].values())
        figures = {f"RSS {role}": mb for role, mb in s["rss_mb"].items()}
        figures["RSS services (keys, relay, projections)"] = sum(
            mb for role, mb in s["rss_mb"].items() if role in SERVICE_ROLES
        )
        figures["RSS whole product"] = sum(s["rss_mb"].values())
        figures["Redis used_memory"] = s["redis_used_memory_mb"]
        figures["Redis streams (MEMORY USAGE)"] = streams_mb
        figures["Redis used_memory beyond streams"] = s["redis_used_memory_mb"] - streams_mb
        for name, stream in s["streams"].items():
            figures[f"stream {name} (MEMORY USAGE)"] = stream["memory_mb"]
        for name, value in figures.items():
            out.setdefault(name, []).append((s["t"], value))
    return out


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of value over time, per hour."""
    if len(points) < 2:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600 if var else None


def cpu_percent(samples: list[dict[str, Any]]) -> dict[str, float]:
    """Each process's average share of one core between the first and the last sample."""
    first, last = samples[0], samples[-1]
    span = last["t"] - first["t"]
    return {
        role: round(100 * (seconds - first["cpu_seconds"].get(role, 0.0)) / span, 1)
        for role, seconds in last["cpu_seconds"].items()
        if span > 0
    }


INFORMATIVE = {
    "RSS redis": "holds the streams",
    "RSS whole product": "includes Redis",
    "Redis used_memory": "split below",
    "Redis streams (MEMORY USAGE)": "grows by design",
}


def verdict(name: str, growth: float | None, limit: float) -> str:
    if growth is None:
        return "-"
    if name.startswith("stream "):
        return "grows by design"
    return INFORMATIVE.get(name) or ("met" if growth < limit else "NOT met")


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def print_summary(summary: dict[str, Any]) -> None:
    limit = summary["target_mb_per_hour"]
    print(
        f"\ngrowth per hour: least-squares fit over {summary['fit_samples']} samples from "
        f"t={summary['fit_from_t']:.0f} s (target: no leak, < {limit:g} MB/h per process and "
        "for Redis beyond its streams; same-run reference for Redis: the streams' own growth)"
    )
    print(f"  {'figure':42} {'last MB':>9} {'MB/h':>9}  verdict")
    for name, growth in summary["growth_mb_per_hour"].items():
        shown = "-" if growth is None else f"{growth:9.1f}"
        last = summary["last_mb"][name]
        print(f"  {name:42} {last:9.1f} {shown:>9}  {verdict(name, growth, limit)}")
    growth = summary["growth_mb_per_hour"]
    used, streams = growth["Redis used_memory"], growth["Redis streams (MEMORY USAGE)"]
    if used is not None and streams:
        print(
            f"Redis used_memory grew {used:.1f} MB/h, its streams {streams:.1f} MB/h by MEMORY "
            f"USAGE ({100 * used / streams:.0f} %); MEMORY USAGE is Redis's estimate and can read "
            "a few % high, so a slightly negative growth beyond streams means none"
        )
    per_hour = ", ".join(
        f"{name} {'-' if rate is None else f'{rate:,.0f}'}"
        for name, rate in summary["stream_entries_per_hour"].items()
    )
    print(f"stream entries per hour: {per_hour}")
    commands, checks = summary["commands"], summary["checks"]
    print(
        f"commands: {commands['sent']:,} sent, {commands['results']:,} results received "
        f"(XADD -> result p50 {ms(commands['result_p50_ms'])}, p99 {ms(commands['result_p99_ms'])})"
    )
    print(
        "results by type and status: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(commands["statuses"].items()))
    )
    shares = ", ".join(f"{role} {share:.1f}" for role, share in summary["cpu_percent"].items())
    print(f"CPU under load, % of a core: {shares}")
    print(
        f"checks: {checks['done']:,} answered 200 ({checks['rate'] or 0:,.0f}/s), "
        f"{checks['errors']:,} errors; latency p50 {ms(checks['p50_ms'])}, "
        f"p99 {ms(checks['p99_ms'])}"
    )
