"""One clock for the partial decodes of every live session on the server.

Every ``interval`` seconds (counted from the start of the previous round), the open utterances of all sessions
that grew since their last decode are decoded again, together: they reach the engine at the same moment, so
the engine batches them. A round starts only when the previous one is done, and not while any session waits
for a final transcript, so a busy engine makes partials rarer instead of queueing them ahead of finals (finals
are decoded as soon as an utterance is committed, outside the rounds).
"""

from __future__ import annotations

import asyncio
from typing import Optional

from .session import TranscriptionSession

#: How often open utterances are decoded again for partial text.
PARTIAL_INTERVAL_SECONDS = 0.3


class PartialScheduler:
    def __init__(self, interval: float = PARTIAL_INTERVAL_SECONDS):
        self.interval = interval
        self._sessions: set[TranscriptionSession] = set()
        self._clock: Optional[asyncio.Task] = None

    def add(self, session: TranscriptionSession) -> None:
        self._sessions.add(session)
        if self._clock is None or self._clock.done():
            self._clock = asyncio.get_running_loop().create_task(self._run(), name="realtime-partials")

    async def remove(self, session: TranscriptionSession) -> None:
        self._sessions.discard(session)
        if not self._sessions and self._clock is not None:
            self._clock.cancel()
            await asyncio.gather(self._clock, return_exceptions=True)
            self._clock = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.round()
            await asyncio.sleep(max(0.0, started + self.interval - loop.time()))

    async def round(self) -> None:
        """One partial decode of every session that wants one, unless finals are waiting."""
        sessions = list(self._sessions)
        if any(session.finals_pending for session in sessions):
            return
        await asyncio.gather(*(session.decode_partial() for session in sessions if session.wants_partial()))
