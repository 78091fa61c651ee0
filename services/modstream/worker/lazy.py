"""A value built once on first use and shared by every caller, such as the worker's pipeline.

Many records wait for the one build at a time. A waiter that is cancelled (the consumer
abandons a record whose partition left) must not cancel the build for the others: awaiting
a task directly would, and every later record would then fail at once with nothing logged
(seen in ``modstream bench --chaos``: a worker holding partitions for minutes, deciding
nothing). So waiters are shielded, and a build that ended without a value is started again.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    def __init__(self, build: Callable[[], Awaitable[T]]) -> None:
        self._build = build
        self._task: asyncio.Task[T] | None = None

    async def get(self) -> T:
        task = self._task
        if task is None or (task.done() and _failed(task)):
            task = self._task = asyncio.ensure_future(self._build())
        return await asyncio.shield(task)

    def built(self) -> T | None:
        """The value once a build has made it; None before (never waits)."""
        task = self._task
        if task is None or not task.done() or _failed(task):
            return None
        return task.result()


def _failed(task: "asyncio.Task[T]") -> bool:
    return task.cancelled() or task.exception() is not None
