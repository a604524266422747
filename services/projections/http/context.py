"""What every query handler shares: the live model, the clock, freshness and the audit store."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from litestar.datastructures import State
from litestar.exceptions import HTTPException

from contracts import queries as q
from services.projections.model.state import ReadModel
from services.projections.model.verification import NOT_FOUND, Verification
from services.projections.runtime.caller_counts import CALLER_COUNTS
from services.projections.runtime.callers import Caller, Callers
from services.projections.runtime.freshness import Freshness
from services.projections.runtime.live import LiveReadModel
from services.projections.store.sql import SqlViewStore

Clock = Callable[[], datetime]
# where the gate puts the request's caller in its ASGI scope (absent: anonymous queries)
CALLER = "apikeys.caller"
# no key has an empty id (ids are 1-200 characters): a question about a key the caller may not
# see is asked about this one instead, so it is answered exactly as for a key that does not exist
NO_KEY = ""


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
        # with a callers file: who may ask (None: anonymous queries)
        self.callers: Callers | None = None
        self.caller_counts = CALLER_COUNTS
        # one of several HTTP workers: its pid, which /health names in a header
        self.worker: str | None = None

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

    def organization_of(self, key_id: str | None) -> str | None:
        view = self.live.model.keys.get(key_id) if key_id else None
        return None if view is None else view.organization_id

    async def model_at(self, min_position: int | None) -> ReadModel:
        await self.live.wait_for(min_position, self.min_position_wait)
        return self.live.model


def caller_in(scope: Mapping[str, Any]) -> Caller | None:
    """The request's caller (None: anonymous queries, no callers file)."""
    caller: Caller | None = scope.get(CALLER)
    return caller


def visible_key(caller: Caller | None, model: ReadModel, key_id: str) -> str:
    """The key id to answer about: ``NO_KEY`` for a key of an organization the caller does
    not see."""
    if caller is None:
        return key_id
    view = model.keys.get(key_id)
    return key_id if view is None or caller.sees(view.organization_id) else NO_KEY


def visible(caller: Caller | None, found: Verification) -> Verification:
    """A verification as the caller may see it: a key of an organization it does not see is
    not found."""
    org = found.organization_id
    if caller is None or org is None or caller.sees(org):
        return found
    return NOT_FOUND


def context_of(state: State) -> QueryContext:
    context: QueryContext = state.queries
    return context
