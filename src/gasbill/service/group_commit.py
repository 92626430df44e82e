"""Group commit: requests that arrive together are written in one transaction.

A push must be durable before it is answered `success`, and a transaction's
commit costs the same for one row as for a hundred. So each request hands
its row to `GroupCommit.submit` and waits; a writer takes everything that is
waiting (up to `max_batch`), writes it in one transaction in a worker
thread, and answers each request with its own outcome. While a batch is
being written the next one gathers, so an idle server adds no delay and a
busy one commits less often, not later.

The write function answers per item: a result, or the exception that item
got (a batch that fails as a whole is the write function's to retry item by
item, so one bad row does not fail its neighbours).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Generic, TypeVar, cast

Item = TypeVar("Item")
Result = TypeVar("Result")

Outcomes = Sequence[Result | Exception]  # one per item, in order


async def _in_thread(work: Callable[[], Outcomes[Result]]) -> Outcomes[Result]:
    return await asyncio.to_thread(work)


class GroupCommit(Generic[Item, Result]):
    """Batches concurrent submissions on one event loop; writers are tasks that live while
    there is work, so nothing needs starting or stopping."""

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Outcomes[Result]],
        *,
        max_batch: int = 256,
        writers: int = 1,
        run: Callable[[Callable[[], Outcomes[Result]]], Awaitable[Outcomes[Result]]] = _in_thread,
    ) -> None:
        if max_batch < 1 or writers < 1:
            raise ValueError("max_batch and writers must be at least 1")
        self._write = write
        self._max_batch = max_batch
        self._max_writers = writers
        self._run = run
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writers: set[asyncio.Task[None]] = set()
        self.batches = 0  # how many transactions, for metrics and tests
        self.items = 0

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._pending or self._writers:
                # another loop is mid-batch (tests drive apps from several loops): go alone
                (outcome,) = await self._run(lambda: self._write([item]))
                return _unwrap(outcome)
            self._loop = loop
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if len(self._writers) < self._max_writers:
            task = loop.create_task(self._drain())
            self._writers.add(task)
            task.add_done_callback(self._writers.discard)
        return await future

    async def _drain(self) -> None:
        try:
            await self._write_pending()
        finally:
            # leave the writers as soon as nothing waits, not when the loop gets round to the
            # finished task: a submission in between would wait for a writer that is gone
            task = asyncio.current_task()
            if task is not None:
                self._writers.discard(cast("asyncio.Task[None]", task))

    async def _write_pending(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            items = [item for item, _ in batch]
            outcomes: Outcomes[Result]
            try:
                outcomes = await self._run(partial(self._write, items))
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} items")
            except Exception as exc:  # the write itself broke: every waiting item gets it
                outcomes = [exc for _ in batch]
            self.batches += 1
            self.items += len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its request was cancelled (client went away)
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)


def _unwrap(outcome: Result | Exception) -> Result:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome
