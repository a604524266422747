"""Pure pieces of riding out outages: lag from watermarks, backoff bounds, which errors are
transient, the keys service's readiness answer."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import pytest
from eventsourcing.persistence import IntegrityError, InternalError, OperationalError
from hypothesis import given
from hypothesis import strategies as st
from redis import exceptions as redis_errors

from services.common.lag import LagTracker, parse_watermark
from services.common.redact import redacted
from services.common.resilience import (
    CANCEL_REPEAT_SECONDS,
    Backoff,
    Outage,
    cancel_all,
    is_transient,
    until_stopped,
)
from services.keys.health import Readiness


class TestLag:
    def test_no_watermark_means_no_lag(self):
        assert LagTracker().lag_seconds(reached=0, now=100.0) == 0.0

    def test_the_lag_is_the_age_of_the_oldest_unreached_watermark(self):
        lag = LagTracker()
        lag.observe(10, stored_at=100.0)
        lag.observe(20, stored_at=104.0)
        assert lag.lag_seconds(reached=5, now=110.0) == 10.0
        assert lag.lag_seconds(reached=10, now=110.0) == 6.0
        assert lag.lag_seconds(reached=20, now=110.0) == 0.0

    def test_an_older_or_equal_watermark_changes_nothing(self):
        lag = LagTracker()
        lag.observe(20, stored_at=100.0)
        lag.observe(15, stored_at=50.0)
        assert lag.stored_position == 20 and lag.lag_seconds(0, 101.0) == 1.0

    @given(st.lists(st.tuples(st.integers(1, 10_000), st.floats(0, 1000)), max_size=300))
    def test_it_stays_bounded_and_never_understates(self, marks):
        lag = LagTracker(limit=16)
        for position, at in sorted(marks):
            lag.observe(position, at)
        assert len(lag._unreached) <= 16
        unreached = [at for position, at in sorted(marks) if position > 0]
        if unreached:
            assert lag.lag_seconds(0, 2000.0) >= 2000.0 - max(unreached) - 1e-9

    def test_parse_watermark(self):
        assert parse_watermark({b"position": b"7", b"stored_at": b"12.5"}) == (7, 12.5)
        assert parse_watermark({}) is None and parse_watermark({b"position": b"1"}) is None


class TestBackoff:
    @given(st.integers(0, 100))
    def test_delays_are_capped(self, attempts):
        backoff = Backoff(base=0.05, cap=2.0)
        delays = [backoff.next_delay() for _ in range(attempts + 1)]
        assert all(0 < d <= 2.0 for d in delays)

    def test_reset_starts_over(self):
        backoff = Backoff(base=0.1, cap=10.0)
        for _ in range(10):
            backoff.next_delay()
        backoff.reset()
        assert backoff.next_delay() <= 0.1


class TestTransient:
    @pytest.mark.parametrize(
        "error",
        [
            redis_errors.ConnectionError("x"),
            redis_errors.TimeoutError("x"),
            OperationalError("x"),
            sqlite3.OperationalError("database is locked"),
            ConnectionRefusedError(),
            redis_errors.ResponseError("LOADING Redis is loading"),
        ],
    )
    def test_outages_are_transient(self, error):
        assert is_transient(error)

    @pytest.mark.parametrize(
        "error",
        [
            IntegrityError("conflict"),
            ValueError("bug"),
            redis_errors.ResponseError("NOGROUP"),
            KeyError("x"),
        ],
    )
    def test_conflicts_and_bugs_are_not(self, error):
        assert not is_transient(error)


class TestOutage:
    def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(self, caplog):
        outage = Outage("Redis", logging.getLogger("test.outage"))
        with caplog.at_level(logging.WARNING, logger="test.outage"):
            for _ in range(5):
                outage.failed(ConnectionError("refused"))
            assert outage.is_down
            for _ in range(3):
                outage.succeeded()
        assert [r.getMessage().split(" (")[0].split(" again")[0] for r in caplog.records] == [
            "Redis unreachable",
            "Redis reachable",
        ]


class TestReadiness:
    def test_reasons_in_order(self):
        ready = Readiness(max_relay_lag_seconds=10)
        assert ready.answer()[1]["reason"] == "starting"
        ready.started = True
        assert ready.answer() == (
            200,
            {"status": "ready", "stored_position": 0, "published_position": 0, "reason": None},
        )
        ready.relay_lag_seconds = 11
        assert ready.answer()[0] == 503 and "unpublished" in ready.answer()[1]["reason"]
        ready.redis.failed(ConnectionError("refused"))
        assert ready.answer()[1]["reason"] == "redis unreachable"
        in_hand = Outage("event store", logging.getLogger("test"))
        ready.store_users.append(in_hand)
        in_hand.failed(ConnectionError("refused"))
        assert ready.answer()[1]["reason"] == "event store unreachable"


class TestSqlState:
    @pytest.mark.parametrize("sqlstate", ["25006", "08006", "57P01", "40001", "40P01"])
    def test_a_database_that_cannot_do_it_now_is_transient(self, sqlstate):
        import psycopg

        cause = psycopg.errors.lookup(sqlstate)("no")
        try:
            raise InternalError("wrapped") from cause
        except InternalError as error:
            assert is_transient(error)

    def test_a_constraint_violation_is_not(self):
        import psycopg

        try:
            raise IntegrityError("dup") from psycopg.errors.lookup("23505")("dup")
        except IntegrityError as error:
            assert not is_transient(error)


class TestRedacted:
    def test_the_password_is_hidden(self):
        assert redacted("postgresql://u:secret@db:5432/x?schema=s") == (
            "postgresql://u:***@db:5432/x?schema=s"
        )
        assert redacted("redis://:pw@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"

    def test_a_url_without_one_is_unchanged(self):
        assert redacted("sqlite:///var/events.db") == "sqlite:///var/events.db"
        assert redacted("redis://127.0.0.1:6380/0") == "redis://127.0.0.1:6380/0"


async def test_a_caller_cancelled_while_cancelling_tasks_is_cancelled_too() -> None:
    """Otherwise a task stopping its background tasks swallows its own cancellation and goes
    on, and the loop that cancelled it at its end waits for it."""

    async def slow_to_end() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.2)  # cleaning up after its cancellation

    background = [asyncio.create_task(slow_to_end())]
    await asyncio.sleep(0)
    stopping = asyncio.create_task(cancel_all(background))
    await asyncio.sleep(0.05)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert background[0].done() or background[0].cancelling()


async def test_a_wait_given_up_leaves_no_task_behind() -> None:
    stop = asyncio.Event()
    before = asyncio.all_tasks()
    waiting = asyncio.create_task(until_stopped(asyncio.sleep(60), stop))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before - {waiting} == set()


async def test_a_task_that_swallowed_its_cancellation_is_cancelled_again() -> None:
    """As a loop reading Redis does on Python 3.11 when the cancellation lands just as
    ``asyncio.wait_for`` sees its call complete (redis-py sends every command that way): it
    carries on as if never cancelled. Stopping it must still end it, soon."""
    turns_after_cancel = 0

    async def loop_that_swallows_once() -> None:
        nonlocal turns_after_cancel
        swallowed = False
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed = True  # carries on, as after wait_for returned normally
            if swallowed:
                turns_after_cancel += 1

    task = asyncio.create_task(loop_that_swallows_once())
    await asyncio.sleep(0.02)
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(cancel_all([task]), 5 * CANCEL_REPEAT_SECONDS)
    assert task.cancelled()
    assert turns_after_cancel > 0  # it did carry on until cancelled again
    assert asyncio.get_running_loop().time() - started < 3 * CANCEL_REPEAT_SECONDS


async def test_stopping_tasks_raises_none_of_their_errors() -> None:
    async def fails() -> None:
        raise RuntimeError("ended badly")

    tasks = [asyncio.create_task(fails()), asyncio.create_task(asyncio.sleep(60))]
    await asyncio.sleep(0)
    await cancel_all(tasks)
    assert isinstance(tasks[0].exception(), RuntimeError) and tasks[1].cancelled()
