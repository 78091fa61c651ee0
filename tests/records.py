"""What the tests read back from topics: one background reader, records grouped by event id."""

import asyncio
import time
from collections import defaultdict
from collections.abc import Collection
from types import TracebackType
from typing import Generic, Self, TypeVar

from modstream.core.events import ModerationDecision
from modstream.core.kafka import kafka_consumer
from modstream.core.settings import Settings
from modstream.ingest.sdk import UploadClient
from pydantic import BaseModel, ValidationError

R = TypeVar("R", bound=BaseModel)
Headers = list[tuple[str, bytes]]


CLOSE_SECONDS = 10.0


class RecordLog(Generic[R]):
    """Every ``kind`` record on ``topic`` from its start, with its headers, read in the background.

    Records keep arriving until ``close``: duplicates show up under the same event id.
    """

    def __init__(self, settings: Settings, topic: str, kind: type[R]) -> None:
        self.by_event: dict[str, list[tuple[R, Headers]]] = defaultdict(list)
        self._task = asyncio.create_task(self._read(settings, topic, kind))

    async def _read(self, settings: Settings, topic: str, kind: type[R]) -> None:
        async with kafka_consumer(settings, topic) as consumer:
            while True:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    for message in batch:
                        try:
                            record = kind.model_validate_json(message.value or b"")
                        except ValidationError:
                            continue  # another record type on the same topic
                        event_id = getattr(record, "event_id", None)
                        if event_id is not None:
                            self.by_event[event_id].append((record, list(message.headers or [])))

    def decided(self, event_ids: Collection[str]) -> int:
        return sum(1 for e in set(event_ids) if e in self.by_event)

    async def wait_for(self, event_ids: Collection[str], count: int | None = None, timeout: float = 60) -> int:
        """Wait until ``count`` (default: all) of ``event_ids`` have a record, or the time is up;
        returns how many have one."""
        wanted = len(set(event_ids)) if count is None else count
        for _ in range(int(timeout * 4)):
            if self.decided(event_ids) >= wanted or self._task.done():
                break
            await asyncio.sleep(0.25)
        if self._task.done():
            self._task.result()  # the reader failed: say why
        return self.decided(event_ids)

    async def settled(self, event_ids: Collection[str], quiet: float = 3, timeout: float = 60) -> int:
        """Wait until the count of ``event_ids`` with a record has not moved for ``quiet`` seconds:
        the reader drains records its client fetched before a cut."""
        count, still_since, deadline = self.decided(event_ids), time.monotonic(), time.monotonic() + timeout
        while time.monotonic() - still_since < quiet:
            assert time.monotonic() < deadline, f"records kept arriving for {timeout} s"
            await asyncio.sleep(0.25)
            if (now := self.decided(event_ids)) != count:
                count, still_since = now, time.monotonic()
        return count

    def all(self, event_id: str) -> list[R]:
        return [record for record, _ in self.by_event.get(event_id, [])]

    def first(self, event_id: str) -> R:
        return self.by_event[event_id][0][0]

    def headers(self, event_id: str) -> Headers:
        """The Kafka headers of the first record for ``event_id``."""
        return self.by_event[event_id][0][1]

    def duplicates(self, event_ids: Collection[str]) -> dict[str, list[R]]:
        return {e: self.all(e) for e in event_ids if len(self.by_event.get(e, [])) > 1}

    async def close(self) -> None:
        self._task.cancel()
        # Bounded: a client whose connection a test cut may never finish stopping, and a
        # test must end with its own failure, not hang in its clean-up.
        await asyncio.wait([self._task], timeout=CLOSE_SECONDS)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def decisions_for(settings: Settings, event_ids: Collection[str], timeout: float) -> list[ModerationDecision]:
    """Every decision for these events that arrives within ``timeout`` seconds (duplicates kept)."""
    async with RecordLog(settings, settings.topic_decisions, ModerationDecision) as log:
        if await log.wait_for(event_ids, timeout=timeout):
            await asyncio.sleep(2)  # a duplicate would arrive right behind the first copy
        return [decision for e in event_ids for decision in log.all(e)]


def decision_log(settings: Settings) -> RecordLog[ModerationDecision]:
    return RecordLog(settings, settings.topic_decisions, ModerationDecision)


async def decide_upload(settings: Settings, data: bytes, tenant: str) -> ModerationDecision:
    """Upload ``data`` as ``tenant`` (the SDK) and wait for its decision."""
    async with UploadClient(settings) as client, decision_log(settings) as decisions:
        event = await client.upload_image(data, tenant)
        assert await decisions.wait_for([event.event_id], timeout=120) == 1, "no decision"
        return decisions.first(event.event_id)


async def first_records(
    settings: Settings, topic: str, kind: type[R], event_ids: Collection[str], timeout: float = 120
) -> dict[str, R]:
    """The first ``kind`` record on ``topic`` of each event; fails naming how many never came."""
    async with RecordLog(settings, topic, kind) as log:
        found = await log.wait_for(event_ids, timeout=timeout)
        missing = len(set(event_ids)) - found
        assert not missing, f"{missing} of {len(set(event_ids))} events have no {kind.__name__} on {topic}"
        return {e: log.first(e) for e in set(event_ids)}


async def records_of(
    settings: Settings, topic: str, kind: type[R], event_id: str, wanted: int, timeout: float = 60
) -> list[R]:
    """The ``kind`` records of one event on ``topic``, once ``wanted`` have arrived (or the time is up)."""
    async with RecordLog(settings, topic, kind) as log:
        for _ in range(int(timeout * 4)):
            if len(log.all(event_id)) >= wanted:
                break
            await asyncio.sleep(0.25)
        return log.all(event_id)
