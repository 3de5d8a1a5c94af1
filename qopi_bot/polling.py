"""The one loop every background worker runs: work while there is work, then wait for a
wake-up or the poll interval; when the database is away, back off (up to 5 s) and go on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def poll_forever(run_once: Callable[[], Awaitable[int]], *, stop: asyncio.Event, wake: asyncio.Event,
                       interval: float, log: Any, event: str, **log_fields: Any) -> None:
    pause = interval
    while not stop.is_set():
        wake.clear()  # before the work, so a notify that arrives during it is not lost
        try:
            busy = await run_once()
            pause = interval
        except Exception as exc:  # a database outage pauses the loop; it never ends it
            busy = 0
            pause = min(5.0, max(pause * 2, 0.5))
            log.warning(event, error=type(exc).__name__, retry_in=pause, **log_fields)
        if busy:
            continue
        try:
            await asyncio.wait_for(wake.wait(), timeout=pause)
        except TimeoutError:
            pass
