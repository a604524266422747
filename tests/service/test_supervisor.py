"""`apikeys run`'s supervisor with real child processes: it gives up on a child that keeps
exiting at once, and stops every child."""

from __future__ import annotations

import subprocess
import sys

from services.local.supervisor import GIVE_UP_AFTER, Child, Supervisor


class TestSupervisor:
    def test_a_child_that_keeps_exiting_at_once_is_given_up(self):
        supervisor = Supervisor()
        child = supervisor.add(
            Child("flaky", lambda: subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]))
        )
        try:
            assert supervisor.watch(poll_seconds=0.05) == 1
            assert child.quick_exits == GIVE_UP_AFTER and child.restarts == GIVE_UP_AFTER - 1
        finally:
            supervisor.stop_all()

    def test_stop_all_ends_every_child(self):
        supervisor = Supervisor()
        child = supervisor.add(
            Child(
                "sleeper",
                lambda: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]),
            )
        )
        supervisor.stop_all()
        assert child.process is not None and child.process.poll() is not None
