"""Waiting out a dependency that does not answer, without letting one poison call wait forever.

Every per-item call to a dependency (fetch an object, score an image, publish a record,
mark an event) goes through ``retrying``: an outage stops the caller with capped,
jittered backoff for as long as it lasts, which is the backpressure we want. A call
that keeps failing while the dependency answers everything else (its health probe) is
not an outage but poison, and after a bounded number of such failures it gives up.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.exceptions

from modstream.core import metrics
from modstream.core.inference import InferenceUnavailable
from modstream.core.kafka import PublishUnavailable
from modstream.core.storage import StorageUnavailable

log = logging.getLogger("modstream.retry")
T = TypeVar("T")
# Failures in a row while the dependency's probe says it is up, before a call counts as
# poison: with the backoff below that is 11-23 s of waiting.
POISON_ATTEMPTS = 8
TRANSIENT: tuple[type[BaseException], ...] = (
    StorageUnavailable,
    InferenceUnavailable,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    PublishUnavailable,
)
Probe = Callable[[], Awaitable[bool]]


class GaveUp(Exception):
    """The dependency is up, yet this one call keeps failing: poison, not an outage."""


async def retrying(
    call: Callable[[], Awaitable[T]],
    dependency: str,
    *,
    still_up: Probe | None = None,
    give_up_after: int = POISON_ATTEMPTS,
    transient: tuple[type[BaseException], ...] = TRANSIENT,
    cap: float = 10.0,
) -> T:
    """``call()``, retried while it raises one of ``transient``.

    Without ``still_up`` there is no attempt limit. With it, each failure asks the
    probe: a failure while the dependency is down resets the count (it is an outage,
    waited out without limit); ``give_up_after`` failures in a row while it is up
    raise ``GaveUp`` with the last error.
    """
    delay, failures_while_up = 0.2, 0
    while True:
        try:
            return await call()
        except transient as exc:
            if still_up is not None:
                failures_while_up = failures_while_up + 1 if await _answers(still_up) else 0
                if failures_while_up >= give_up_after:
                    raise GaveUp(
                        f"{dependency} is up but failed this call {failures_while_up} times: {str(exc)[:300]}"
                    ) from exc
            log.warning("dependency unavailable, retrying", extra={"dependency": dependency, "error": str(exc)[:300]})
            metrics.dependency_retries.add(1, {"dependency": dependency})
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(cap, delay * 2)


async def _answers(probe: Probe) -> bool:
    # A probe that raises is a dependency that does not answer.
    try:
        return await probe()
    except Exception:
        return False
