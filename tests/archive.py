"""Shared by the archive and quality tests: records to archive, produced by a second real
Kafka client (confluent-kafka), and an archive of their own per test."""

import asyncio
import io
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from confluent_kafka import KafkaError, Message, Producer
from modstream.archive.archiver import Archiver
from modstream.core.events import (
    ModelRef,
    ModerationDecision,
    Outcome,
    Record,
    ReviewVerdict,
    ShadowScore,
    Thresholds,
)
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.core.topics import ensure_topics

from tests.offsets import wait_until_committed_to_end

MODEL = ModelRef(name="image_safety", version="1")
THRESHOLDS = {"nsfw": Thresholds(review_at=0.4, block_at=0.85), "nsfl": Thresholds(review_at=0.35, block_at=0.8)}


async def private_archive(settings: Settings) -> Settings:
    """``settings`` with topics, a bucket and a consumer group no other test uses."""
    tag = uuid.uuid4().hex[:10]
    private = settings.model_copy(
        update={
            "topic_decisions": f"archive-{tag}.decisions",
            "topic_review_verdicts": f"archive-{tag}.verdicts",
            "topic_shadow": f"archive-{tag}.shadow",
            "archive_bucket": f"archive-{tag}",
            "archive_group": f"archive-{tag}",
        }
    )
    await ensure_topics(private)
    return private


def decision(rng: random.Random, at: datetime, tenant: str = "t", nsfw: float | None = None) -> ModerationDecision:
    scores = {"nsfw": rng.random() if nsfw is None else nsfw, "nsfl": rng.random() * 0.5}
    scores["sfw"] = max(0.0, 1 - scores["nsfw"] - scores["nsfl"])
    outcome = Outcome.BLOCK if scores["nsfw"] >= 0.85 else Outcome.REVIEW if scores["nsfw"] >= 0.4 else Outcome.ALLOW
    return ModerationDecision(
        event_id=uuid.uuid4().hex,
        tenant=tenant,
        bucket="uploads",
        key=f"k/{uuid.uuid4().hex}.jpg",
        occurred_at=at,
        decision=outcome,
        scores=scores,
        model=MODEL,
        policy_id="default",
        policy_version="v1",
        audit_rate=0.05,
        audit_sample=rng.random() < 0.05 and outcome is not Outcome.REVIEW,
        thresholds=THRESHOLDS,
        uploaded_at=at,
        latency_ms=12.0,
    )


def verdict_for(automatic: ModerationDecision, rng: random.Random) -> ReviewVerdict:
    remove = rng.random() < automatic.scores["nsfw"]
    return ReviewVerdict(
        **automatic.model_dump(include={"event_id", "tenant", "bucket", "key", "scores", "model", "policy_id"}),
        policy_version=automatic.policy_version,
        occurred_at=automatic.occurred_at + timedelta(minutes=3),
        job_id=automatic.event_id,
        job_kind="audit_sample" if automatic.audit_sample else "threshold_review",
        queue="audit" if automatic.audit_sample else "sexual-content",
        verdict="remove" if remove else "approve",
        labels=["nsfw"] if remove else [],
        reviewer=rng.choice(["rita", "remy"]),
        review_seconds=4.0,
        automatic_decision_id=automatic.decision_id,
        human_decision_id=uuid.uuid4().hex,
    )


def second_review(first: ReviewVerdict, rng: random.Random) -> ReviewVerdict:
    """The other reviewer's blind verdict on the same item: mostly the same answer."""
    agrees = rng.random() < 0.85
    remove = (first.verdict == "remove") == agrees
    return first.model_copy(
        update={
            "verdict_id": uuid.uuid4().hex,
            "job_id": f"{first.job_id}:second",
            "job_kind": "second_review",
            "verdict": "remove" if remove else "approve",
            "labels": ["nsfw"] if remove else [],
            "reviewer": "remy" if first.reviewer == "rita" else "rita",
            "human_decision_id": None,
            "occurred_at": first.occurred_at + timedelta(minutes=10),
        }
    )


def shadow_of(automatic: ModerationDecision) -> ShadowScore:
    return ShadowScore(
        **automatic.model_dump(include={"event_id", "tenant", "bucket", "key", "policy_id", "policy_version"}),
        occurred_at=automatic.occurred_at,
        serving_model=MODEL,
        serving_scores=automatic.scores,
        serving_decision=automatic.decision,
        shadow_model=ModelRef(name="image_safety", version="2"),
        shadow_scores=automatic.scores,
        shadow_decision=automatic.decision,
    )


def traffic(count: int, seed: int, start: datetime | None = None) -> Iterator[tuple[str, Record]]:
    """(table, record) for ``count`` decisions over two days, a verdict for every review and
    audit sample, and a shadow score for every tenth."""
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    for i in range(count):
        automatic = decision(rng, start + timedelta(minutes=i * 2))
        yield "decisions", automatic
        if automatic.decision is Outcome.REVIEW or automatic.audit_sample:
            first = verdict_for(automatic, rng)
            yield "verdicts", first
            if i % 5 == 0:  # a blind second review by the other reviewer
                yield "verdicts", second_review(first, rng)
        if i % 10 == 0:
            yield "shadow", shadow_of(automatic)


class Produce:
    """confluent-kafka, one record per batch (the local broker's end offsets are right then)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = {
            "decisions": settings.topic_decisions,
            "verdicts": settings.topic_review_verdicts,
            "shadow": settings.topic_shadow,
        }
        self._client = Producer(
            {"bootstrap.servers": settings.kafka_bootstrap, "acks": "all", "linger.ms": 0, "batch.num.messages": 1}
        )
        self._failures: list[KafkaError] = []

    def send(self, table: str, value: bytes, key: str) -> None:
        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                self._failures.append(error)

        self._client.produce(self.topics[table], value=value, key=key.encode(), on_delivery=delivered)
        self._client.poll(0)

    def record(self, table: str, record: Record) -> None:
        self.send(table, record.to_bytes(), getattr(record, "event_id", "none"))

    def flush(self) -> None:
        assert self._client.flush(60) == 0, "confluent-kafka did not deliver within 60 s"
        assert not self._failures, self._failures


# ``modstream archive`` that SIGKILLs itself where a crash is rarest and costliest: its tables'
# commits have landed, the Kafka offsets they free are not committed yet.
DIES_BEFORE_KAFKA_COMMIT = """
import os, signal, sys
import aiokafka

async def die(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

aiokafka.AIOKafkaConsumer.commit = die
from modstream.cli import app
sys.argv = ["modstream", "archive"]
app()
"""


def start_archiver(settings: Settings, log: Path, *, dies_before_kafka_commit: bool = False) -> subprocess.Popen[bytes]:
    """A real ``modstream archive`` process (its own session: a test may kill its group)."""
    command = ["-c", DIES_BEFORE_KAFKA_COMMIT] if dies_before_kafka_commit else ["-m", "modstream.cli", "archive"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *command],
            env={**os.environ, **settings.as_env()},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def archive_in_process(settings: Settings) -> None:
    """An archiver in this process until it has committed every record on its topics."""
    stop = asyncio.Event()
    archiver = asyncio.create_task(Archiver(settings).run(stop))
    try:
        for topic in (settings.topic_decisions, settings.topic_review_verdicts, settings.topic_shadow):
            await wait_until_committed_to_end(settings, settings.archive_group, topic, timeout=120)
    finally:
        stop.set()
        await archiver


def ids_in_files(settings: Settings, table: str) -> set[str]:
    """Every event id in every Parquet file under the table's folder on the store, referenced or not."""
    return {str(row["event_id"]) for row in rows_in_files(settings, table, ["event_id"])}


def rows_in_files(settings: Settings, table: str, columns: list[str]) -> list[dict[str, object]]:
    """Every row (``columns`` of it) of every Parquet file under the table's folder, referenced or not."""
    store = ObjectStore(settings)
    found: list[dict[str, object]] = []
    for name in store.keys(settings.archive_bucket, f"iceberg/{table}/data/"):
        if name.endswith(".parquet"):
            data = store.get(settings.archive_bucket, name, 1 << 30)
            found += pq.read_table(io.BytesIO(data), columns=columns).to_pylist()
    return found
