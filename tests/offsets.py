"""Positive signals that a topic has been read to its end: what lets a test prove an absence.

"The end" is what ``bench.ledger.read_to_end`` reads: past the broker's reported end
offsets, until nothing more comes (the local broker's can fall a few records short).
"""

import asyncio
from collections import defaultdict

from aiokafka import TopicPartition
from modstream.bench.ledger import committed, read_to_end
from modstream.core.settings import Settings
from pydantic import ValidationError

from tests.records import R


async def ends(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    """Each partition of ``topic`` with a record, and the offset after its last one now."""
    last: dict[TopicPartition, int] = {}
    for partition, offset, _ in await read_to_end(settings, topic):
        tp = TopicPartition(topic, partition)
        last[tp] = max(last.get(tp, 0), offset + 1)
    return last


async def records_so_far(settings: Settings, topic: str, kind: type[R]) -> dict[str, list[R]]:
    """Every ``kind`` record on ``topic`` up to its end as it is now, by event id."""
    found: dict[str, list[R]] = defaultdict(list)
    for _, _, value in await read_to_end(settings, topic):
        try:
            record = kind.model_validate_json(value or b"")
        except ValidationError:
            continue  # another record type on the same topic
        if isinstance(event_id := getattr(record, "event_id", None), str):
            found[event_id].append(record)
    return found


async def wait_until_committed_to_end(settings: Settings, group: str, topic: str, timeout: float = 300) -> None:
    """Wait until ``group`` has committed every record on ``topic`` as it is now: each one,
    replays included, has been handled to the end (offsets are committed only after that)."""
    last = await ends(settings, topic)
    async with asyncio.timeout(timeout):
        while True:
            done = await committed(settings, group, list(last))
            if all(done.get(tp, -1) >= end for tp, end in last.items()):
                return
            await asyncio.sleep(0.5)
