"""An asyncio micro-batcher: windows that arrive within a few milliseconds share one forward pass.

Engines without their own scheduler (Transformers) use it so that concurrent requests are batched
together, not only the windows of one request. Waiting items are taken lowest ``key`` first (ties in
arrival order). When a shared batch fails, each of its windows is decoded again alone, so only the window
that caused the failure fails (and only its request).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Callable, Generic, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    def __init__(
        self,
        decode_batch: Callable[[Sequence[Item]], list[Result]],
        max_batch: int,
        max_wait_seconds: float = 0.005,
        key: Callable[[Item], Any] = lambda item: 0,
    ):
        self._decode_batch = decode_batch
        self._max_batch = max_batch
        self._max_wait = max_wait_seconds
        self._key = key
        self._arrivals = itertools.count()
        self._queue: asyncio.PriorityQueue[tuple[Any, int, Item, asyncio.Future[Result]]] = asyncio.PriorityQueue()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    def depth(self) -> int:
        return self._queue.qsize()

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        for item, future in zip(items, futures):
            self._queue.put_nowait((self._key(item), next(self._arrivals), item, future))
        return list(await asyncio.gather(*futures))

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            try:
                results = await asyncio.to_thread(self._decode_batch, [item for item, _ in batch])
            except Exception as error:  # never the worker; and one bad item must not fail the items it shared a batch with
                if len(batch) == 1:
                    _settle(batch[0][1], error=error)
                    continue
                for single in batch:
                    await self._decode_alone(single)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result=result)

    async def _decode_alone(self, pending: tuple[Item, asyncio.Future[Result]]) -> None:
        item, future = pending
        try:
            [result] = await asyncio.to_thread(self._decode_batch, [item])
        except Exception as error:
            _settle(future, error=error)
        else:
            _settle(future, result=result)

    async def _collect(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        batch = [self._entry(await self._queue.get())]
        deadline = asyncio.get_running_loop().time() + self._max_wait
        while len(batch) < self._max_batch:
            timeout = deadline - asyncio.get_running_loop().time()
            try:
                entry = self._queue.get_nowait() if timeout <= 0 else await asyncio.wait_for(self._queue.get(), timeout)
                batch.append(self._entry(entry))
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
        return batch

    @staticmethod
    def _entry(queued: tuple[Any, int, Item, asyncio.Future[Result]]) -> tuple[Item, asyncio.Future[Result]]:
        _, _, item, future = queued
        return item, future


def _settle(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    """Resolve a caller's future unless it gave up (cancelled) meanwhile."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
