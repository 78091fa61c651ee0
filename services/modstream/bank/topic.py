"""The banks topic: writing changes to it, reading it whole, and following it live.

One partition, compacted: every reader replays it from the start and applies each record
in order, so a worker that starts builds the same banks as one that has run for a month,
and a change reaches every running worker as one small record — no periodic rebuild and
no moment when every worker re-syncs at once.
"""

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from modstream.bank.state import Banks
from modstream.core.events import Bank, BankEntry, bank_key, entry_key
from modstream.core.kafka import connection_options, kafka_producer
from modstream.core.settings import Settings
from modstream.core.topics import ensure_topics

log = logging.getLogger("modstream.bank")
Change = tuple[str, bytes | None]  # (key, value); a null value deletes


def put_bank(bank: Bank) -> Change:
    return bank_key(bank.name), bank.to_bytes()


def put_entry(entry: BankEntry) -> Change:
    return entry_key(entry.bank, entry.entry_id), entry.to_bytes()


def delete_entry(bank: str, entry_id: str) -> Change:
    return entry_key(bank, entry_id), None


def delete_bank(banks: Banks, name: str) -> list[Change]:
    """Tombstones for every entry, then the bank's: compaction then forgets them all."""
    return [delete_entry(name, entry_id) for entry_id in banks.ids_of(name)] + [(bank_key(name), None)]


async def publish(settings: Settings, changes: Sequence[Change]) -> None:
    await ensure_topics(settings)
    async with kafka_producer(settings) as producer:
        sent = [await producer.send(settings.topic_banks, value, key=key.encode()) for key, value in changes]
        await asyncio.gather(*sent)


class BankFollower:
    """Banks kept current from the topic: ``load`` reads it to its end, ``follow`` applies
    every later change as it arrives."""

    def __init__(self, settings: Settings, banks: Banks | None = None) -> None:
        self.settings = settings
        self.banks = Banks() if banks is None else banks
        self._partition = TopicPartition(settings.topic_banks, 0)
        self._consumer = AIOKafkaConsumer(
            **connection_options(settings),
            enable_auto_commit=False,
            fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        )
        self._started = False

    async def load(self) -> Banks:
        """Read the topic from its start to its end; again from the start if called again
        (applying a record twice leaves the same banks)."""
        await ensure_topics(self.settings)
        if not self._started:
            await self._consumer.start()
            self._consumer.assign([self._partition])
            self._started = True
        await self._consumer.seek_to_beginning(self._partition)
        end = (await self._consumer.end_offsets([self._partition]))[self._partition]
        while await self._consumer.position(self._partition) < end:
            await self._apply_batch(1000)
        self.banks.compact()
        log.info("banks loaded", extra={"banks": len(self.banks.banks), "entries": len(self.banks)})
        return self.banks

    async def follow(self) -> None:
        while True:
            await self._apply_batch(1000)

    async def _apply_batch(self, timeout_ms: int) -> None:
        for records in (await self._consumer.getmany(self._partition, timeout_ms=timeout_ms)).values():
            keyed = [((r.key or b"").decode(errors="replace"), r.value) for r in records]
            # One bad record must not stop every bank from updating: it is skipped, loudly.
            for position, problem in self.banks.apply_all(keyed):
                log.error("bank record skipped", extra={"offset": records[position].offset, "detail": str(problem)})

    async def close(self) -> None:
        if self._started:
            await self._consumer.stop()


async def read_banks(settings: Settings) -> Banks:
    """The banks as the topic has them now."""
    follower = BankFollower(settings)
    try:
        return await follower.load()
    finally:
        await follower.close()
