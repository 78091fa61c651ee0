"""How fast the archiver drains a backlog, against a bare consumer reading the same records.

Synthetic decisions (random scores, the default policy's labels and thresholds, 2 % audit
samples, a verdict for every review and audit sample) go onto topics of the benchmark's own;
then, in turn: a consumer that only reads them (the baseline: what Kafka alone costs), and
an archiver that parses, commits them to the Iceberg tables and commits its offsets. Same
records, same run; the ratio is what archiving costs over reading. Then the tables'
maintenance: data files per table and day before and after it, and what it took.
"""

import asyncio
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition

from modstream.archive.archiver import Archiver, Observer
from modstream.archive.maintenance import data_files, maintain
from modstream.core import lake
from modstream.core.archive import TABLES
from modstream.core.events import ModelRef, ModerationDecision, Outcome, Record, ReviewVerdict, Thresholds
from modstream.core.kafka import kafka_consumer, kafka_producer
from modstream.core.settings import Settings
from modstream.core.topics import ensure_topics

MODEL = ModelRef(name="image_safety", version="1")
THRESHOLDS = {"nsfw": Thresholds(review_at=0.4, block_at=0.85), "nsfl": Thresholds(review_at=0.35, block_at=0.8)}


@dataclass(frozen=True)
class Drain:
    records: int
    seconds: float

    @property
    def records_per_second(self) -> float:
        return round(self.records / self.seconds, 1) if self.seconds else 0.0


def bench_settings(settings: Settings) -> Settings:
    """Topics, a bucket, a consumer group and a Redis database (drift state) of the benchmark's own."""
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    return settings.model_copy(
        update={
            "redis_url": settings.redis_url.rsplit("/", 1)[0] + "/15",
            "topic_decisions": f"{tag}.decisions",
            "topic_review_verdicts": f"{tag}.verdicts",
            "topic_shadow": f"{tag}.shadow",
            "archive_bucket": tag,
            "archive_group": tag,
            "archive_web_port": 0,
        }
    )


def synthetic(decisions: int, seed: int = 1, days: float = 30.0) -> Iterator[tuple[str, Record]]:
    """(topic role, record) for ``decisions`` decisions spread over ``days``, with verdicts."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=days)
    step = timedelta(days=days) / max(decisions, 1)
    for i in range(decisions):
        at = start + i * step
        scores = {"nsfw": rng.betavariate(1, 6), "nsfl": rng.betavariate(1, 12)}
        reached = [t for label, t in THRESHOLDS.items() if scores[label] >= t.review_at]
        blocked = any(scores[label] >= t.block_at for label, t in THRESHOLDS.items())
        outcome = Outcome.BLOCK if blocked else Outcome.REVIEW if reached else Outcome.ALLOW
        audited = outcome is not Outcome.REVIEW and rng.random() < 0.02
        decision = ModerationDecision(
            event_id=uuid.uuid4().hex,
            tenant=rng.choice(("acme", "kids")),
            bucket="uploads",
            key=f"bench/{i}.jpg",
            occurred_at=at,
            decision=outcome,
            scores=scores,
            model=MODEL,
            policy_id="default",
            policy_version="bench",
            audit_sample=audited,
            audit_rate=0.02,
            thresholds=THRESHOLDS,
            uploaded_at=at,
            latency_ms=20.0,
        )
        yield "decisions", decision
        if outcome is Outcome.REVIEW or audited:
            truth = [label for label in THRESHOLDS if rng.random() < scores[label]]
            yield "verdicts", _verdict(decision, truth, rng)


def _verdict(decision: ModerationDecision, labels: list[str], rng: random.Random) -> ReviewVerdict:
    return ReviewVerdict(
        **decision.model_dump(include={"event_id", "tenant", "bucket", "key", "scores", "model", "policy_id"}),
        policy_version=decision.policy_version,
        occurred_at=decision.occurred_at + timedelta(minutes=5),
        job_id=decision.event_id,
        job_kind="audit_sample" if decision.audit_sample else "threshold_review",
        queue="audit" if decision.audit_sample else "default",
        verdict="remove" if labels else "approve",
        labels=labels,
        reviewer=rng.choice(("rita", "remy", "rex")),
        review_seconds=5.0,
        automatic_decision_id=decision.decision_id,
        human_decision_id=uuid.uuid4().hex,
    )


async def publish(settings: Settings, records: list[tuple[str, Record]]) -> None:
    await ensure_topics(settings)
    topics = {"decisions": settings.topic_decisions, "verdicts": settings.topic_review_verdicts}
    async with kafka_producer(settings, linger_ms=20) as producer:
        sent = [
            await producer.send(topics[role], record.to_bytes(), key=getattr(record, "event_id", "").encode())
            for role, record in records
        ]
        await asyncio.gather(*sent)


async def read_all(settings: Settings, total: int) -> Drain:
    """The baseline: a consumer of its own reading every record, doing nothing with them."""
    started, seen = time.perf_counter(), 0
    topics = (settings.topic_decisions, settings.topic_review_verdicts)
    async with kafka_consumer(settings, *topics, group_id=f"{settings.archive_group}-baseline") as consumer:
        while seen < total:
            for batch in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                seen += len(batch)
    return Drain(seen, time.perf_counter() - started)


async def archive_all(
    settings: Settings,
    total: int,
    on_progress: Callable[[int], None],
    observers: Callable[[], Sequence[Observer]],
) -> Drain:
    """The archiver (with its observers) from the start of the topics until it has committed every record."""
    started = time.perf_counter()
    stop = asyncio.Event()
    archiver = Archiver(settings, observers())
    task = asyncio.create_task(archiver.run(stop))
    topics = (settings.topic_decisions, settings.topic_review_verdicts)
    partitions = [TopicPartition(t, p) for t in topics for p in range(settings.topic_partitions)]
    async with kafka_consumer(settings, group_id=settings.archive_group, auto_commit=False) as watcher:
        while True:
            done = 0
            for tp in partitions:
                done += max(await watcher.committed(tp) or 0, 0)
            on_progress(done)
            if done >= total or task.done():
                break
            await asyncio.sleep(0.5)
    seconds = time.perf_counter() - started
    stop.set()
    await task
    return Drain(done, seconds)


def run_archive_bench(
    settings: Settings,
    decisions: int,
    on_stage: Callable[[str], None],
    on_progress: Callable[[int], None],
    observers: Callable[[Settings], Sequence[Observer]] = lambda s: (),
    days: float = 1.0,
) -> tuple[Settings, dict[str, Any]]:
    """Publish, read (baseline), archive; returns the settings of the benchmark's archive and the
    report. ``observers`` are made (in the archiver's event loop) for the benchmark's settings.

    The decisions span ``days`` (default a day of traffic, as a flush of a live archiver holds:
    spread over a month, every flush would write a file per table for each of 30 days)."""
    private = bench_settings(settings)
    records = list(synthetic(decisions, days=days))
    on_stage(
        f"publishing {len(records)} records ({decisions} decisions and their verdicts) to {private.topic_decisions}"
    )
    asyncio.run(publish(private, records))
    on_stage("baseline: a bare consumer reads them all")
    baseline = asyncio.run(read_all(private, len(records)))
    on_stage(f"archiver: parse, commit to the Iceberg tables in s3://{private.archive_bucket}, commit offsets")
    archived = asyncio.run(archive_all(private, len(records), on_progress, lambda: observers(private)))
    on_stage("maintenance: compact by day, expire snapshots, remove orphan files")
    before = files_per_day(private)
    started = time.perf_counter()
    maintain(private, retain=timedelta(0), grace=timedelta(0))
    maintained = round(time.perf_counter() - started, 2)
    return private, {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "records": len(records),
        "decisions": decisions,
        "days": days,
        "baseline_read": asdict(baseline) | {"records_per_second": baseline.records_per_second},
        "archive": asdict(archived) | {"records_per_second": archived.records_per_second},
        "archive_vs_read": round(archived.seconds / baseline.seconds, 2) if baseline.seconds else None,
        "flush_records": private.archive_flush_records,
        "flush_seconds": private.archive_flush_seconds,
        "files_per_table_day": {"before_maintenance": before, "after_maintenance": files_per_day(private)},
        "maintenance_seconds": maintained,
    }


def files_per_day(settings: Settings) -> dict[str, dict[str, float]]:
    """Per table: the most and the median data files of a day."""
    found = {}
    for table in TABLES.values():
        stored = lake.find_table(settings, table)
        if stored is None:
            continue
        counts = list(Counter(day for day, _ in data_files(stored)).values())
        found[table.name] = {"max": max(counts, default=0), "median": statistics.median(counts) if counts else 0}
    return found
