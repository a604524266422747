"""`apikeys run`'s supervisor: starts each part as a child process, restarts a child that
exits (with backoff, logged), gives up with a clear message after repeated immediate failures,
forwards SIGTERM/SIGINT to its children and leaves none behind. Each child is also asked to
end by the kernel should the supervisor die outright."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.common.lifeline import die_with_parent

log = logging.getLogger("apikeys.run")
# a child that ran this long before exiting is restarted at once
HEALTHY_RUN_SECONDS = 10.0
GIVE_UP_AFTER = 5  # exits in a row, each sooner than HEALTHY_RUN_SECONDS after its start
STOP_SECONDS = 9.0


@dataclass
class Child:
    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None
    restarts: int = field(default=0)
    stop_last: bool = False  # a dependency of the others (the embedded Redis)

    def launch(self) -> None:
        self.started_at = time.monotonic()
        self.restart_at = None
        try:
            self.process = self.start()
        except Exception as error:  # counted as an exit at once: backoff, then give up
            print(f"{self.name} did not start: {type(error).__name__}: {error}", flush=True)
            self.process = _NEVER_STARTED


class _NeverStarted:
    """Stands for a child whose start failed: it has exited, with code 1."""

    returncode = 1

    def poll(self) -> int:
        return 1


_NEVER_STARTED: Any = _NeverStarted()


def spawn(args: list[str], env: dict[str, str], **extra: object) -> subprocess.Popen[bytes]:
    """A child that the kernel signals (SIGTERM) when the supervisor dies."""
    return subprocess.Popen(args, env=env, preexec_fn=die_with_parent, **extra)  # type: ignore[call-overload]


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self.stopping = False

    def add(self, child: Child) -> Child:
        child.launch()
        self.children.append(child)
        return child

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            print(f"stopping ({signal.Signals(signum).name})", flush=True)
        self.stopping = True

    def watch(self, poll_seconds: float = 0.5) -> int:
        """Keep every child running until a stop is asked for (0) or a child keeps failing
        (1)."""
        while not self.stopping:
            for child in self.children:
                if not self.look_after(child):
                    return 1
            time.sleep(poll_seconds)
        return 0

    def look_after(self, child: Child) -> bool:
        process = child.process
        if process is None or process.poll() is None:
            if child.restart_at is not None and time.monotonic() >= child.restart_at:
                self._restart(child)
            return True
        ran = time.monotonic() - child.started_at
        child.quick_exits = child.quick_exits + 1 if ran < HEALTHY_RUN_SECONDS else 0
        if child.quick_exits >= GIVE_UP_AFTER:
            print(
                f"{child.name} exited {child.quick_exits} times in a row within "
                f"{HEALTHY_RUN_SECONDS:.0f} s of starting (last exit code {process.returncode}); "
                "giving up",
                flush=True,
            )
            return False
        delay = 0.0 if child.quick_exits == 0 else min(8.0, 0.5 * 2 ** (child.quick_exits - 1))
        print(
            f"{child.name} exited with code {process.returncode} after {ran:.1f} s; "
            f"restarting in {delay:.1f} s",
            flush=True,
        )
        child.process = None
        child.restart_at = time.monotonic() + delay
        if delay == 0.0:
            self._restart(child)
        return True

    def _restart(self, child: Child) -> None:
        child.restarts += 1
        child.launch()

    def stop_all(self) -> None:
        """SIGTERM to the services, then to what they depend on; SIGKILL to stragglers."""
        self.stopping = True
        deadline = time.monotonic() + STOP_SECONDS
        for last in (False, True):
            _terminate(
                [
                    c.process
                    for c in reversed(self.children)
                    if c.stop_last == last and c.process is not None
                ],
                deadline,
            )


def _terminate(processes: list[subprocess.Popen[bytes]], deadline: float) -> None:
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
