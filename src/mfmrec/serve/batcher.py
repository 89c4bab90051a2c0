"""Micro-batching: concurrent requests for one key become one call of a batch function.

A request joins the queue of its key (model, k). One drain task per key takes up to
``max_batch`` queued requests, after waiting at most ``max_wait_ms`` for the queue to
fill when it holds fewer, and runs the batch function once over all of them in a worker
thread, off the event loop. Requests that arrive meanwhile queue up for the next call
(the wait before each call also catches the clients that answer a finished batch with new
requests at once), so a busy model is called with large batches and an idle one answers
after a few ms. An
exception in a call fails exactly the requests of that call. ``max_batch=1`` with no wait
is one model call per request (``--no-batching``).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

BatchFn = Callable[[Hashable, Sequence[Any]], Sequence[Any]]


@dataclass
class BatchStats:
    """What the batcher did: model calls and the size of each."""

    calls: int = 0
    requests: int = 0
    sizes: list[int] = field(default_factory=list)

    def record(self, size: int) -> None:
        self.calls += 1
        self.requests += size
        self.sizes.append(size)


class MicroBatcher:
    """Gathers ``submit(key, payload)`` calls into ``fn(key, payloads)`` calls.

    ``fn`` returns one result per payload, in order. It runs in ``executor`` (by
    default one worker thread, so model calls never overlap).
    """

    def __init__(self, fn: BatchFn, max_batch: int = 32, max_wait_ms: float = 5.0,
                 executor: Executor | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix="mfmrec-model")
        self.stats = BatchStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[Hashable, deque] = defaultdict(deque)
        self._draining: dict[Hashable, asyncio.Task] = {}

    @property
    def batching(self) -> bool:
        return self.max_batch > 1

    async def submit(self, key: Hashable, payload: Any) -> Any:
        """Queue ``payload`` under ``key``; returns its result (or raises its call's error)."""
        loop = asyncio.get_running_loop()
        self._bind(loop)
        future: asyncio.Future = loop.create_future()
        self._queues[key].append((payload, future))
        if key not in self._draining:
            self._draining[key] = loop.create_task(self._drain(key))
        return await future

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Queues belong to one event loop; a new loop (a restarted server) starts afresh."""
        if self._loop is not loop:
            self._loop = loop
            self._queues.clear()
            self._draining.clear()

    async def _drain(self, key: Hashable) -> None:
        queue = self._queues[key]
        try:
            while queue:
                if len(queue) < self.max_batch and self.max_wait > 0:
                    await asyncio.sleep(self.max_wait)  # let concurrent requests join
                batch = [queue.popleft() for _ in range(min(self.max_batch, len(queue)))]
                await self._run(key, batch)
        finally:
            self._draining.pop(key, None)

    async def _run(self, key: Hashable, batch: list) -> None:
        payloads = [payload for payload, _ in batch]
        loop = asyncio.get_running_loop()
        self.stats.record(len(batch))
        try:
            results = await loop.run_in_executor(self.executor, self.fn, key, payloads)
            if len(results) != len(batch):
                raise RuntimeError(f"batch function returned {len(results)} results for "
                                   f"{len(batch)} requests")
        except Exception as exc:  # fails this call's requests only
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # a client that went away cancelled its future
                future.set_result(result)

    async def run_single(self, fn: Callable[[], Any]) -> Any:
        """Run one unbatched call (e.g. an explanation) on the model thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
