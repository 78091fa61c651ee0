"""The worker's pipeline is built once for every record waiting on it, and a waiter abandoned by
the consumer (cancelled) leaves the build running for the others."""

import asyncio

import pytest
from modstream.worker.lazy import Lazy


async def test_a_cancelled_waiter_does_not_cancel_the_build_for_the_others() -> None:
    builds = 0
    release = asyncio.Event()

    async def build() -> str:
        nonlocal builds
        builds += 1
        await release.wait()
        return "pipeline"

    shared = Lazy(build)
    assert shared.built() is None
    abandoned = asyncio.create_task(shared.get())
    waiting = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    release.set()
    assert await waiting == "pipeline"
    assert await shared.get() == "pipeline" and builds == 1 and shared.built() == "pipeline"


async def test_a_build_that_failed_is_started_again() -> None:
    attempts: list[int] = []

    async def build() -> int:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise RuntimeError("first build fails")
        return len(attempts)

    shared = Lazy(build)
    with pytest.raises(RuntimeError):
        await shared.get()
    assert shared.built() is None
    assert await shared.get() == 2 and await shared.get() == 2 and len(attempts) == 2
