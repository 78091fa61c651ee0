"""The books of "exactly one decision per upload": every upload record, by partition and
offset, against the automatic decisions on the decisions topic and the group's commits.

``account`` is pure; ``read_ledger`` reads the topics to their ends. Tests and the chaos
benchmark both judge a run with it, so "lost" and "decided two ways" mean one thing.
"""

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from modstream.core.events import ImageUploaded, ModerationDecision
from modstream.core.kafka import connection_options, kafka_consumer
from modstream.core.settings import Settings


@dataclass(frozen=True)
class Upload:
    partition: int
    offset: int
    event_id: str | None  # None: not an upload event (it gets a dead letter, not a decision)


@dataclass(frozen=True)
class Account:
    uploads: int
    decided: int  # uploads with at least one automatic decision
    lost: list[Upload]  # uploads with none
    repeated: list[str]  # events decided again the same way (allowed: effectively once)
    conflicting: list[str]  # events with two different automatic decisions (never allowed)
    handled_prefix: dict[int, int]  # per partition, the first offset with no decision (its end if none)
    committed_past: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (commit, prefix)

    @property
    def sound(self) -> bool:
        return not self.lost and not self.conflicting and not self.committed_past


def action(decision: ModerationDecision) -> tuple[str, str | None, tuple[str, ...]]:
    """What a platform acts on: the outcome, the review queue and the labels that triggered.
    Two automatic decisions of one event that differ here are two different decisions."""
    return decision.decision.value, decision.review_queue, tuple(sorted(t.label for t in decision.triggered))


def account(
    uploads: Sequence[Upload],
    decisions: Mapping[str, Sequence[ModerationDecision]],
    committed: Mapping[int, int] | None = None,
) -> Account:
    """Judge a run: every upload offset needs an automatic decision, no event may have two
    different ones, and no commit may lie beyond a partition's contiguous decided prefix."""
    automatic = {e: [d for d in found if d.source == "automatic"] for e, found in decisions.items()}
    lost: list[Upload] = []
    prefix: dict[int, int] = {}
    for upload in sorted(uploads, key=lambda u: (u.partition, u.offset)):
        # A record that is no upload event gets a dead letter, not a decision: it does not
        # break the prefix.
        handled = upload.event_id is None or bool(automatic.get(upload.event_id))
        if not handled:
            lost.append(upload)
            prefix.setdefault(upload.partition, upload.offset)
        elif prefix.get(upload.partition, upload.offset) == upload.offset:
            prefix[upload.partition] = upload.offset + 1
    events = {u.event_id for u in uploads if u.event_id is not None}
    ways = {e: {action(d) for d in automatic.get(e, ())} for e in events}
    committed_past = {
        partition: (offset, prefix.get(partition, 0))
        for partition, offset in (committed or {}).items()
        if offset > prefix.get(partition, 0)
    }
    return Account(
        uploads=len(uploads),
        decided=sum(1 for e in events if automatic.get(e)),
        lost=lost,
        repeated=sorted(e for e in events if len(automatic.get(e, ())) > 1 and len(ways[e]) == 1),
        conflicting=sorted(e for e in events if len(ways[e]) > 1),
        handled_prefix=prefix,
        committed_past=committed_past,
    )


async def read_ledger(settings: Settings, group: str | None = None, events: Collection[str] | None = None) -> Account:
    """The account of the uploads topic as it is now (read to its end), with ``group``'s commits;
    with ``events``, of their uploads only (a run's, on a stack that saw traffic before it)."""
    uploads = [
        Upload(partition, offset, _event_id(value))
        for partition, offset, value in await read_to_end(settings, settings.topic_uploads)
    ]
    if events is not None:
        uploads = [u for u in uploads if u.event_id in events]
    decisions: dict[str, list[ModerationDecision]] = defaultdict(list)
    for _, _, value in await read_to_end(settings, settings.topic_decisions):
        try:
            decision = ModerationDecision.model_validate_json(value or b"")
        except ValidationError:
            continue
        decisions[decision.event_id].append(decision)
    partitions = sorted({u.partition for u in uploads})
    commits = await committed_offsets(settings, group, settings.topic_uploads, partitions) if group else {}
    return account(uploads, decisions, commits)


async def read_to_end(
    settings: Settings, topic: str, quiet_seconds: float = 2.0
) -> list[tuple[int, int, bytes | None]]:
    """(partition, offset, value) of every record on ``topic``, read until the reported end
    and then until nothing more came for ``quiet_seconds``: the local broker's end offsets
    can fall a few records short even with one record per producer batch (seen here with
    200 sends in flight), so they are only where to start waiting."""
    found: list[tuple[int, int, bytes | None]] = []
    async with kafka_consumer(settings) as consumer:
        await consumer.topics()  # metadata first, so the partitions are known
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return found
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while True:
            short = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            batches = await consumer.getmany(*partitions, timeout_ms=500 if short else int(quiet_seconds * 1000))
            if not batches and not short:
                return found
            for batch in batches.values():
                found.extend((m.partition, m.offset, m.value) for m in batch)


async def committed(settings: Settings, group: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """``group``'s committed offset on each of ``partitions`` (-1: never committed). The
    partitions are named: the local broker cannot answer for "all of the group's"."""
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items()}


async def committed_offsets(settings: Settings, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """``group``'s committed offset on each of ``partitions`` of ``topic`` (never committed: left out)."""
    found = await committed(settings, group, [TopicPartition(topic, p) for p in partitions])
    return {tp.partition: offset for tp, offset in found.items() if offset >= 0}


def _event_id(value: bytes | None) -> str | None:
    try:
        return ImageUploaded.model_validate_json(value or b"").event_id
    except ValidationError:
        return None
