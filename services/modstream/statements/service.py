"""``modstream statements``: restrictions -> statements of reasons -> the Transparency Database.

Two plain consumers in one process, each committing offsets only once what it read is
handled (at least once; nothing is skipped at a rebalance, see docs/architecture.md):

- the writer reads the decisions and publishes a statement (``build.statement_for``) for
  each restriction of a tenant whose policy has a ``statements`` section, and an updated
  statement (``build.lifted_for``) for each appeal's overturn; a replay publishes the same
  puid again, which the database holds already;
- the submitter reads the statements and sends those of tenants whose section names an
  endpoint, at most 100 a call; a statement the database refuses (or that our own check
  refused) is dead-lettered with the reason. While the database or the token fails, it
  waits, and the lag (how long the oldest statement has waited) grows. An updated statement
  is never sent (the database has no call to update or withdraw one): it is counted and
  logged, and left for the platform on the topic.
"""

import asyncio
import base64
import contextlib
import hashlib
import logging
import signal
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Annotated

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from pydantic import Field, TypeAdapter, ValidationError

from modstream.core import metrics
from modstream.core.dsa import BATCH_LIMIT
from modstream.core.events import DeadLetter, DeadLetterReason, ModerationDecision, StatementIssued, StatementLifted
from modstream.core.kafka import KafkaPublisher, kafka_consumer, kafka_producer
from modstream.core.logs import configure_logging
from modstream.core.retry import retrying
from modstream.core.settings import Settings
from modstream.policy.watcher import PolicyStore
from modstream.statements.build import lifted_for, statement_for
from modstream.statements.submitter import NotSent, Sent, read_token, submit

log = logging.getLogger("modstream.statements")
POLL_MS = 1000
# The records on the statements topic: a restriction's statement, or the update lifting it.
ON_TOPIC: TypeAdapter[StatementIssued | StatementLifted] = TypeAdapter(
    Annotated[StatementIssued | StatementLifted, Field(discriminator="event_type")]
)
# When the oldest statement still to be sent was published, by tenant (the lag gauge's source).
_waiting_since: dict[str, float] = {}


def _lag() -> Iterable[tuple[float, dict[str, str]]]:
    now = time.time()
    return [(now - since, {"tenant": tenant}) for tenant, since in list(_waiting_since.items())]


metrics.observe_gauge(
    "modstream.statements.lag",
    "s",
    "How long the oldest statement not yet taken by the Transparency Database has waited, by tenant",
    _lag,
)


class Statements:
    def __init__(self, settings: Settings, policies: PolicyStore) -> None:
        self.settings = settings
        self.policies = policies

    async def run(self, stop: asyncio.Event) -> None:
        async with kafka_producer(self.settings) as producer:
            self._publisher = KafkaPublisher(producer)
            await asyncio.gather(self._write(stop), self._submit(stop))

    async def _write(self, stop: asyncio.Event) -> None:
        topic = self.settings.topic_decisions
        async with kafka_consumer(
            self.settings, topic, group_id=self.settings.statements_group, auto_commit=False
        ) as consumer:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=500)
                self.policies.refresh()
                for records in batches.values():
                    for record in records:
                        await self._state(record)
                await _commit(consumer, batches)

    async def _state(self, record: ConsumerRecord) -> None:
        try:
            decision = ModerationDecision.model_validate_json(record.value)
        except ValidationError:
            return  # not a decision: the archive keeps it in its unreadable table
        rules = self.policies.current.for_tenant(decision.tenant).statements
        if rules is None:
            return
        try:
            issued = statement_for(decision, rules) or lifted_for(decision)
        except ValidationError as exc:
            # Our own check (personal data, a date out of bounds): never sent, kept with why.
            await self._dead_letter(record, decision.event_id, decision.tenant, str(exc)[:1000])
            return
        if issued is None:
            return
        await self._publish(self.settings.topic_statements, issued.puid, issued.to_bytes())
        if isinstance(issued, StatementLifted):
            metrics.statements_lifted.add(1, {"tenant": issued.tenant})
        else:
            metrics.statements.add(1, {"tenant": issued.tenant, "path": issued.path})

    async def _submit(self, stop: asyncio.Event) -> None:
        topic = self.settings.topic_statements
        async with (
            kafka_consumer(
                self.settings, topic, group_id=self.settings.statements_submit_group, auto_commit=False
            ) as consumer,
            httpx.AsyncClient() as client,
        ):
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=10 * BATCH_LIMIT)
                self.policies.refresh()
                by_tenant: dict[str, list[tuple[ConsumerRecord, StatementIssued]]] = defaultdict(list)
                for records in batches.values():
                    for record in records:
                        try:
                            issued = ON_TOPIC.validate_json(record.value or b"")
                        except ValidationError:
                            continue
                        if isinstance(issued, StatementLifted):
                            _not_sent(issued)
                            continue
                        by_tenant[issued.tenant].append((record, issued))
                for tenant, statements in by_tenant.items():
                    await self._send(client, tenant, statements)
                await _commit(consumer, batches)

    async def _send(
        self, client: httpx.AsyncClient, tenant: str, statements: list[tuple[ConsumerRecord, StatementIssued]]
    ) -> None:
        rules = self.policies.current.for_tenant(tenant).statements
        if rules is None or rules.submit is None:
            return  # on the topic for the platform; this tenant submits nowhere
        where = rules.submit
        for start in range(0, len(statements), BATCH_LIMIT):
            chunk = statements[start : start + BATCH_LIMIT]
            _waiting_since.setdefault(tenant, min(s.occurred_at.timestamp() for _, s in chunk))
            batch = [issued for _, issued in chunk]

            async def attempt(batch: list[StatementIssued] = batch) -> Sent:
                return await submit(client, str(where.endpoint), read_token(where.token_file), batch)

            sent = await retrying(attempt, "transparency database", transient=(NotSent,), cap=60.0)
            _waiting_since.pop(tenant, None)
            metrics.statements_submitted.add(len(sent.accepted), {"tenant": tenant, "outcome": "accepted"})
            metrics.statements_submitted.add(len(sent.duplicates), {"tenant": tenant, "outcome": "duplicate"})
            for record, issued in chunk:
                if issued.puid in sent.refused:
                    await self._dead_letter(record, issued.event_id, tenant, sent.refused.pop(issued.puid))

    async def _dead_letter(self, record: ConsumerRecord, event_id: str, tenant: str, why: str) -> None:
        payload: bytes = record.value or b""
        letter = DeadLetter(
            reason=DeadLetterReason.STATEMENT_REFUSED,
            detail=why,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            event_id=event_id,
            payload_base64=base64.b64encode(payload).decode(),
            payload_bytes=len(payload),
            payload_sha256=hashlib.sha256(payload).hexdigest(),
        )
        log.error("statement refused", extra={"event_id": event_id, "tenant": tenant, "reason": why[:300]})
        await self._publish(self.settings.topic_dead_letter, event_id, letter.to_bytes())
        metrics.statements_refused.add(1, {"tenant": tenant})

    async def _publish(self, topic: str, key: str, value: bytes) -> None:
        await retrying(lambda: self._publisher.publish(topic, key, value, []), "kafka")


def _not_sent(update: StatementLifted) -> None:
    """An updated statement is the platform's to send to the person concerned, never the
    database's: it has no call to update or withdraw a statement, and would take this one as a
    second restriction (or refuse it). Counted and logged, not dead-lettered."""
    log.info(
        "updated statement not sent to the transparency database: it takes no updates",
        extra={
            "event_id": update.event_id,
            "tenant": update.tenant,
            "puid": update.puid,
            "supersedes": update.supersedes,
        },
    )
    metrics.statements_not_sent.add(1, {"tenant": update.tenant})


async def _commit(consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
    """Commit past what was read and handled (all of it: handling waits out every outage)."""
    offsets = {tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in batches.items() if records}
    if offsets:
        await consumer.commit(offsets)


STOP_SECONDS = 10.0


def run_statements(settings: Settings) -> None:
    """Write and submit statements in this process until SIGINT/SIGTERM; metrics on
    ``statements_web_port``."""
    configure_logging(root=True)
    if settings.statements_web_port:
        metrics.serve_metrics("modstream-statements", settings.bind_host, settings.statements_web_port)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        service = asyncio.create_task(Statements(settings, PolicyStore(settings.policies_dir, None)).run(stop))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([service, stopping], return_when=asyncio.FIRST_COMPLETED)
        if service.done():
            stopping.cancel()
            service.result()  # a loop that died ends the process, to be restarted
            return
        # Offsets are committed only after handling: whatever is cut short is read again.
        await asyncio.wait([service], timeout=STOP_SECONDS)
        service.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await service

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
