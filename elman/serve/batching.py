"""Micro-batching: concurrent requests for one model run as one forward pass.

No timer: a request that finds the worker idle runs at once (alone, no added latency);
requests that arrive while a pass is running wait for it and then go together, up to
``max_batch`` of one key (a model and a chunk shape, say). All passes run on one worker
thread, so torch never runs two at once and the event loop stays free to read requests.
When a batch raises ValueError (bad input, which ``run`` must raise before it changes any
state), each job is run alone, so one bad input cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

RunBatch = Callable[[list[Any]], list[Any]]


class Batcher:
    """Queues jobs by key; ``run(key's jobs) -> results`` in order, on the worker thread."""

    def __init__(self, max_batch: int = 64) -> None:
        self.max_batch = max_batch
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="elman-model")
        self._pending: list[tuple[Hashable, RunBatch, Any, asyncio.Future]] = []
        self._busy = False
        self.sizes: list[int] = []  # batch sizes run, for tests and benchmarks

    async def submit(self, key: Hashable, run: RunBatch, job: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((key, run, job, future))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` alone on the worker thread (work that does not batch)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def _drain(self) -> None:
        try:
            while self._pending:
                key, run = self._pending[0][0], self._pending[0][1]
                batch = [p for p in self._pending if p[0] == key][: self.max_batch]
                taken = {id(p) for p in batch}
                self._pending = [p for p in self._pending if id(p) not in taken]
                self.sizes.append(len(batch))
                await self._run(run, batch)
        finally:
            self._busy = False

    async def _run(self, run: RunBatch, batch: list) -> None:
        jobs = [p[2] for p in batch]
        try:
            results = await self.call(run, jobs)
            outcomes = [(r, None) for r in results]
        except ValueError as e:  # bad input, raised before any state changed: find whose
            alone = len(jobs) > 1
            outcomes = [await self._alone(run, j) for j in jobs] if alone else [(None, e)]
        except Exception as e:  # not the input's fault: every job gets the error
            outcomes = [(None, e)] * len(jobs)
        for (*_, future), (result, error) in zip(batch, outcomes, strict=True):
            if future.cancelled():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    async def _alone(self, run: RunBatch, job: Any) -> tuple[Any, Exception | None]:
        try:
            return (await self.call(run, [job]))[0], None
        except Exception as e:
            return None, e

    def close(self) -> None:
        self.pool.shutdown(wait=True)


__all__ = ["Batcher"]
