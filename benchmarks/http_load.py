"""HTTP load at a fixed number of keep-alive connections for a fixed time: wrk when installed
(a Lua script cycles through a file of request paths), else a raw-socket asyncio generator."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WRK_SCRIPT = r"""
local paths = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = math.random(#paths)
end
function request()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i], HEADERS)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "bad_status": %d, "socket_errors": %d,'
    .. ' "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class Load:
    tool: str
    requests: int
    seconds: float
    bad: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def tool_name(choice: str = "auto") -> str:
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    return choice


def run(
    url: str,
    paths: list[str],
    seconds: float,
    connections: int,
    tool: str,
    headers: dict[str, str] | None = None,
) -> Load:
    """``headers`` go with every request (say, a caller's Authorization)."""
    if tool == "wrk":
        return _wrk(url, paths, seconds, connections, headers or {})
    return asyncio.run(_python(url, paths, seconds, connections, headers or {}))


def _lua_headers(headers: dict[str, str]) -> str:
    pairs = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
    return "HEADERS = {" + pairs + "}\n"


def _wrk(
    url: str, paths: list[str], seconds: float, connections: int, headers: dict[str, str]
) -> Load:
    with tempfile.TemporaryDirectory() as tmp:
        script, listing = Path(tmp, "paths.lua"), Path(tmp, "paths.txt")
        script.write_text(_lua_headers(headers) + WRK_SCRIPT)
        listing.write_text("\n".join(paths) + "\n")
        # one wrk thread: the server is one process on a 2-core machine, leave it a core
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "5s",
                "-s",
                str(script),
                url,
                "--",
                str(listing),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    found = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    return Load(
        "wrk",
        found["requests"],
        found["duration_us"] / 1e6,
        found["bad_status"] + found["socket_errors"],
        found["p50_us"] / 1000,
        found["p99_us"] / 1000,
    )


async def _python(
    url: str, paths: list[str], seconds: float, connections: int, headers: dict[str, str]
) -> Load:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    latencies: list[float] = []
    bad = [0]
    started = time.perf_counter()
    deadline = started + seconds

    async def connection(offset: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        i = offset
        while time.perf_counter() < deadline:
            path = paths[i % len(paths)]
            request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
            i += connections
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            if head[9:10] != b"2":
                bad[0] += 1
        writer.close()

    await asyncio.gather(*(connection(c) for c in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    return Load(
        "python",
        n,
        elapsed,
        bad[0],
        latencies[n // 2] * 1000,
        latencies[min(n - 1, int(n * 0.99))] * 1000,
    )


def describe(tool: str) -> str:
    if tool == "wrk":
        version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
        return (version.splitlines() or ["wrk"])[0].strip()
    return f"python asyncio raw-socket generator (pid {os.getpid()}, same machine)"
