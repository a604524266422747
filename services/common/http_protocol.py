"""uvicorn's HTTP/1.1 protocol (httptools) with the connection limits uvicorn lacks.

- A connection beyond ``max_connections`` is closed as soon as it is accepted, unread; the
  established ones go on being served (uvicorn's ``limit_concurrency`` instead accepts them all
  and answers 503 to every request on every connection while over the limit).
- A request must arrive in full (its headers, and its body if it has one) within
  ``header_timeout_seconds`` of the connection's opening (the first request) or of its first
  byte (the later ones); uvicorn has no timer before a request is complete, so a client that
  sends nothing, or trickles its headers, holds a descriptor for ever. The server's tick calls
  ``check_deadline``: a timer per request would cost more on the check path than a sweep.
- Idle keep-alive connections: uvicorn's own timer (``timeout_keep_alive``), armed after each
  answer; bytes that begin no request put the connection back under the request deadline.
- An answer that ends the connection (the client asked ``Connection: close``, or the app
  failed) while the request's body is still arriving, as with a 413 to a client that writes
  its whole body before reading: the rest of the body is read and dropped, within the same
  deadline, before the close; closing with unread bytes would send a reset, and the client
  would see "connection reset" instead of the answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from services.common.http_limits import HttpLimits

log = logging.getLogger("apikeys.http")
LOG_EVERY_SECONDS = 10.0


class Gate:
    """One server's refusals, logged at most once every LOG_EVERY_SECONDS (a flood of
    connections must not become a flood of log lines)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.refused = 0
        self.logged_at = -LOG_EVERY_SECONDS

    def refuse(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self.logged_at >= LOG_EVERY_SECONDS:
            log.warning(
                "%d HTTP connections open: new ones are closed (%d since the last report)",
                self.limit,
                self.refused,
            )
            self.logged_at = now
            self.refused = 0


class LimitedHttpProtocol(HttpToolsProtocol):
    """Made per server by ``limited_protocol`` (its limits and gate are class attributes)."""

    limits: ClassVar[HttpLimits]
    gate: ClassVar[Gate]
    # when the request in arrival began (the connection's opening for the first); None when
    # no request is arriving
    waiting_since: float | None = None
    close_when_received = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport  # uvicorn's connection_lost closes it (again)
            transport.abort()
            self.gate.refuse()
            return
        super().connection_made(transport)
        self.waiting_since = self.loop.time()

    def on_message_begin(self) -> None:
        if self.waiting_since is None:
            self.waiting_since = self.loop.time()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if not cycle.keep_alive:  # the answer will end the connection
            cycle.transport = _CloseWhenReceived(self, cycle)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self.waiting_since = None
        super().on_message_complete()
        if self.close_when_received:
            self.transport.close()

    def close_after(self, cycle: RequestResponseCycle) -> None:
        """The cycle's close: at once unless its answer went out before its request's body
        came in (then when the body is in, or at the request's deadline)."""
        if cycle.more_body and not cycle.disconnected and cycle is self.cycle:
            self.close_when_received = True
            self.flow.resume_reading()
        else:
            self.transport.close()

    def check_deadline(self, now: float) -> None:
        """Close the connection if its request is overdue (called on the server's tick)."""
        if self.transport.is_closing():
            return
        since = self.waiting_since
        if since is None:
            cycle = self.cycle
            answering = cycle is not None and not cycle.response_complete
            if not answering and self.timeout_keep_alive_task is None:
                # bytes after an answer cancel the keep-alive timer without beginning a request
                self.waiting_since = now
        elif now - since >= self.limits.header_timeout_seconds:
            self.transport.close()


class _CloseWhenReceived:
    """The transport as a closing request's cycle sees it: only closing differs."""

    def __init__(self, protocol: LimitedHttpProtocol, cycle: RequestResponseCycle) -> None:
        transport = protocol.transport
        self.write = transport.write
        self.is_closing = transport.is_closing
        self.get_extra_info = transport.get_extra_info
        self._protocol = protocol
        self._cycle = cycle

    def close(self) -> None:
        self._protocol.close_after(self._cycle)


def limited_protocol(limits: HttpLimits) -> type[LimitedHttpProtocol]:
    """The protocol class for one server: its limits, and its own refusal log."""
    attributes: dict[str, Any] = {"limits": limits, "gate": Gate(limits.max_connections)}
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), attributes)
