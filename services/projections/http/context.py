"""What every query handler shares: the live model, the clock, freshness and the audit store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from litestar.datastructures import State
from litestar.exceptions import HTTPException

from contracts import queries as q
from services.projections.model.state import ReadModel
from services.projections.runtime.freshness import Freshness
from services.projections.runtime.live import LiveReadModel
from services.projections.store.sql import SqlViewStore

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class StaleRefused(Exception):
    """APIKEYS_REFUSE_WHEN_STALE: a check or verify is refused rather than answered late."""

    def __init__(self, lag_seconds: float, position: int, missing: tuple[int, int] | None) -> None:
        if missing is None:
            super().__init__(f"the projection is {lag_seconds:.1f} s behind what is stored")
        else:
            super().__init__(
                f"events after position {missing[0]} up to {missing[1]} are missing "
                "(no longer on the events stream); catching up"
            )
        self.lag_seconds = lag_seconds
        self.position = position


AnswerT = TypeVar("AnswerT", bound=q.Answer)


class QueryContext:
    def __init__(self, live: LiveReadModel, clock: Clock, min_position_wait: float) -> None:
        self.live = live
        self.clock = clock
        self.min_position_wait = min_position_wait
        self.freshness = Freshness(5.0)
        self.refuse_when_stale = False
        self.event_log: SqlViewStore | None = None

    def fresh(self, answer: AnswerT) -> AnswerT:
        """The answer, marked stale with its lag when the model is behind."""
        lag = self.freshness.stale_lag(self.live.position)
        if lag is not None:
            answer.stale = True
            answer.lag_seconds = lag
        return answer

    def refuse_if_stale(self) -> None:
        if self.refuse_when_stale:
            lag = self.freshness.stale_lag(self.live.position)
            if lag is not None:
                raise StaleRefused(lag, self.live.position, self.freshness.missing)

    def audit_store(self) -> SqlViewStore:
        if self.event_log is None:
            raise HTTPException("this service has no event log store", status_code=501)
        return self.event_log

    async def model_at(self, min_position: int | None) -> ReadModel:
        await self.live.wait_for(min_position, self.min_position_wait)
        return self.live.model


def context_of(state: State) -> QueryContext:
    context: QueryContext = state.queries
    return context
