"""Services as subprocesses of a test, each in its own process group, and nothing left after.

A process can leave its group (the embedded redis-server of ``apikeys run`` gets a session of
its own) and then be orphaned when its parent dies. Two nets catch it at teardown: a tracker
thread records every descendant of every started process ten times a second, and every process
started carries the environment variable ``FAULT_TEST_MARKER`` with a value unique to the test,
which its descendants inherit (redis-server overwrites its environment block with its process
title, hence the tracker). Processes are never looked up by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

MARKER_VARIABLE = "FAULT_TEST_MARKER"
TRACK_INTERVAL_SECONDS = 0.1
# settings of the environment the tests run in must not leak into the services under test
LEAKY_PREFIXES = ("APIKEYS_", "REDIS_URL", "POSTGRES_")


class ManagedProcess:
    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited {self.popen.returncode}"
        return f"{self.name} (pid {self.pid}, {state}, log {self.log_path}):\n{self.log_tail()}"


class ProcessHarness:
    def __init__(self, workdir: Path, marker: str) -> None:
        self.workdir = workdir
        self.marker = marker
        self.started: list[ManagedProcess] = []
        self._tracked: dict[tuple[int, float], psutil.Process] = {}
        self._lock = threading.Lock()
        self._stop_tracking = threading.Event()
        self._tracker = threading.Thread(target=self._track, daemon=True, name="process-tracker")

    def env(self, **settings: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY_PREFIXES)}
        return {**base, MARKER_VARIABLE: self.marker, **settings}

    def start(self, name: str, args: Sequence[str], env: dict[str, str]) -> ManagedProcess:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                list(args),
                env={**env, MARKER_VARIABLE: self.marker},
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = ManagedProcess(name, popen, log_path)
        with self._lock:
            self.started.append(process)
        if not self._tracker.is_alive():
            self._tracker.start()
        return process

    def _track(self) -> None:
        while not self._stop_tracking.wait(TRACK_INTERVAL_SECONDS):
            self._record_descendants()

    def _record_descendants(self) -> list[psutil.Process]:
        """Every live descendant of a started process or of one recorded earlier (an orphan's
        own children), recorded by (pid, start time) so that a reused pid is not confused."""
        with self._lock:
            started = [m for m in self.started if m.alive()]  # not reaped: its pid is its own
            tracked = [p for p in self._tracked.values() if not is_gone(p)]
        roots = []
        for managed in started:
            with contextlib.suppress(psutil.Error):
                roots.append(psutil.Process(managed.pid))
        found = []
        for root in roots + tracked:
            with contextlib.suppress(psutil.Error):
                if root.is_running():  # still that process (psutil compares start times)
                    found.extend(root.children(recursive=True))
        with self._lock:
            for process in found:
                with contextlib.suppress(psutil.Error):
                    self._tracked.setdefault((process.pid, process.create_time()), process)
            return [p for p in self._tracked.values() if not is_gone(p)]

    def python(self, name: str, module_args: Sequence[str], env: dict[str, str]) -> ManagedProcess:
        return self.start(name, [sys.executable, "-m", *module_args], env)

    def run_cli(
        self, args: Sequence[str], env: dict[str, str], timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """``python -m services.cli ...`` to completion, in its own group, output captured."""
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            env={**env, MARKER_VARIABLE: self.marker},
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
            check=False,
        )

    def marked_processes(self) -> list[psutil.Process]:
        """Every live process carrying this test's marker (zombies count as gone)."""
        found = []
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if process.status() == psutil.STATUS_ZOMBIE:
                    continue
                if process.environ().get(MARKER_VARIABLE) == self.marker:
                    found.append(process)
        return found

    def kill_everything(self) -> list[str]:
        """SIGKILL every group started and every descendant or marked process; return a
        description of whatever is still alive afterwards (empty when all is gone)."""
        self._stop_tracking.set()
        for _ in range(3):  # a supervisor may have started a child between the scan and the kill
            victims = self._record_descendants() + self.marked_processes()
            for managed in self.started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(managed.pid, signal.SIGKILL)
            for victim in victims:
                with contextlib.suppress(psutil.Error):
                    victim.kill()
            for managed in self.started:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    managed.popen.wait(timeout=5)
            wait_gone(victims, timeout=5)
            if not self._survivors():
                break
        return [describe_process(p) for p in self._survivors()]

    def _survivors(self) -> list[psutil.Process]:
        roots = []
        for managed in self.started:
            with contextlib.suppress(psutil.Error):
                if managed.alive():
                    roots.append(psutil.Process(managed.pid))
        return roots + self._record_descendants() + self.marked_processes()


def describe_process(process: psutil.Process) -> str:
    try:
        return f"pid {process.pid} {' '.join(process.cmdline())[:160]}"
    except psutil.Error:
        return f"pid {process.pid}"


def is_gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def wait_gone(processes: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until each process has ended (a zombie counts as ended, whoever its parent);
    return those still alive at the timeout."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if not is_gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if not is_gone(p)]
    return alive


def children_running(parent_pid: int, module: str) -> list[psutil.Process]:
    """Live children of ``parent_pid`` whose command line runs ``python -m <module>``."""
    found = []
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(parent_pid).children():
            with contextlib.suppress(psutil.Error):
                cmdline = child.cmdline()
                if not is_gone(child) and "-m" in cmdline and module in cmdline:
                    found.append(child)
    return found


def embedded_redis_children(parent_pid: int) -> list[psutil.Process]:
    """Live children of ``parent_pid`` that are a redis-server (the embedded one)."""
    found = []
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(parent_pid).children():
            with contextlib.suppress(psutil.Error):
                if not is_gone(child) and child.name() == "redis-server":
                    found.append(child)
    return found


def relay_children(keys_pid: int) -> list[psutil.Process]:
    """The keys service's relay: its child process that is not multiprocessing's resource
    tracker (a helper process that ``spawn`` starts beside it)."""
    found = []
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(keys_pid).children():
            with contextlib.suppress(psutil.Error):
                if not is_gone(child) and "resource_tracker" not in " ".join(child.cmdline()):
                    found.append(child)
    return found
