"""Secure by default: who may ask the query API, decided once at start.

With ``APIKEYS_CALLERS_FILE`` every query needs a caller. Without it queries are anonymous, and
the service answers only on a loopback address: asked to listen on another one, it refuses to
start, unless ``APIKEYS_ALLOW_ANONYMOUS_QUERIES=true`` says so explicitly (warned at every start).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path

from services.projections.runtime.callers import CallersFile, CallersFileError
from services.projections.runtime.settings import Settings

log = logging.getLogger("apikeys.callers")


class StartRefused(Exception):
    """The service must not start as configured (the message says why and what to set)."""


def is_loopback(host: str) -> bool:
    """Whether every address the host name stands for is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    addresses = {str(info[4][0]).split("%", 1)[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def who_may_ask(settings: Settings) -> CallersFile | None:
    """The callers file in force, or None for anonymous queries; StartRefused when anonymous
    queries would be answered beyond this machine without being asked for, or the callers
    file is unusable."""
    if settings.callers_file is not None:
        try:
            return CallersFile(Path(settings.callers_file))
        except CallersFileError as error:
            raise StartRefused(str(error)) from error
    if settings.allow_anonymous_queries:
        log.warning(
            "APIKEYS_ALLOW_ANONYMOUS_QUERIES=true and no APIKEYS_CALLERS_FILE: anyone who can "
            "reach %s may query every organization's keys",
            settings.http_addr,
        )
        return None
    if not is_loopback(settings.http_host):
        raise StartRefused(
            f"refusing to answer anonymous queries on {settings.http_addr}, which is not a "
            "loopback address: set APIKEYS_CALLERS_FILE (a callers file, see `apikeys "
            "new-caller`), or listen on 127.0.0.1, or set APIKEYS_ALLOW_ANONYMOUS_QUERIES=true"
        )
    return None
