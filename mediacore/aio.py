"""asyncio glue: media events arrive in batches when the engine's eventfd becomes readable.

This is the only place where the media engine meets an event loop. The engine never calls into
Python; the loop notices the descriptor and drains a batch in one crossing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mediacore._core import Engine
from mediacore.types import MediaEvent

__all__ = ["EventWatcher"]

#: Events taken per crossing; more wait for the next readiness callback.
BATCH = 1024


class EventWatcher:
    """Delivers engine events to ``on_events`` (a batch at a time) or to an ``asyncio.Queue``."""

    def __init__(
        self,
        engine: Engine,
        on_events: Callable[[list[MediaEvent]], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._engine = engine
        self._loop = loop or asyncio.get_running_loop()
        self._fd = engine.event_fd()
        self._on_events = on_events
        self.queue: asyncio.Queue[MediaEvent] = asyncio.Queue()
        self._loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        batch = self._engine.drain_events(BATCH)
        if not batch:
            return
        if self._on_events is not None:
            self._on_events(batch)
        else:
            for event in batch:
                self.queue.put_nowait(event)

    def close(self) -> None:
        self._loop.remove_reader(self._fd)

    async def next_event(self) -> MediaEvent:
        return await self.queue.get()
