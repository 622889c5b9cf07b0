"""An asyncio micro-batcher: windows that arrive within a few milliseconds share one forward pass.

Engines without their own scheduler (Transformers) use it so that concurrent requests are batched
together, not only the windows of one request. Waiting items are taken lowest ``key`` first (ties in
arrival order).
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
            items = [item for item, _ in batch]
            try:
                results = await asyncio.to_thread(self._decode_batch, items)
            except Exception as error:  # a failed batch fails its callers, never the worker
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

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
