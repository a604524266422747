"""libpq settings that notice a connection gone silent (a failover, a partition, a dropped
NAT entry): without them a blocked call waits for the kernel's two-hour keepalive."""

from __future__ import annotations

LIVENESS: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 5,  # seconds idle before the first probe
    "keepalives_interval": 2,
    "keepalives_count": 3,  # so a silent peer is noticed after about 11 s
    "tcp_user_timeout": 10_000,  # ms an unacknowledged send may wait
}

# psycopg_pool doubles the wait between reconnection attempts without a cap (1, 2, 4, 8 s...);
# giving an attempt sequence up after this long makes the next request start a fresh one at
# once, so a pool is back within a few seconds of the database, however long the outage.
RECONNECT_SECONDS = 4.0
