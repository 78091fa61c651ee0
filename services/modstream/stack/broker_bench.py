"""What the local broker's durable storage costs: the same load on memory and on S3 storage.

In one run, one after the other, a private broker of each kind (its own state folder and
free loopback ports; on S3 storage with its own local S3 server) gets the same work:

- produce: ``records`` keyed records of ``size`` bytes to a topic of 4 partitions, acks=all,
  at most ``in_flight`` unacknowledged (the worker keeps 64 events in flight), once with the
  local stack's producer options (one record per batch: ``MODSTREAM_PRODUCER_MAX_BATCH_SIZE``)
  and once with the client's normal batching; latency is from ``send`` to acknowledgement;
- consume: a consumer group joins, reads every record (at most 100 a fetch) and commits after
  each fetch; the rate counts from the moment the group assigned the partitions;
- restart: the broker is SIGKILLed and restarted as ``modstream stack restart kafka`` does;
  then how many records are still there.
"""

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psutil
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from modstream.core.kafka import connection_options, kafka_producer, producer_options
from modstream.core.ports import free_port_block, free_ports
from modstream.core.settings import Settings
from modstream.stack.supervisor import restart_server, stack_status, start_stack, stop_stack

Storage = Literal["memory", "s3"]
STORAGES: tuple[Storage, ...] = ("memory", "s3")
PARTITIONS = 4
GROUP = "broker-bench"


def run_broker_bench(
    settings: Settings,
    records: int = 2_000,
    size: int = 512,
    in_flight: int = 64,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> dict[str, Any]:
    """Both storages in turn on private brokers; the report as a JSON-ready dict."""
    runs = {}
    with tempfile.TemporaryDirectory(prefix="modstream-broker-bench-") as folder:
        for storage in STORAGES:
            private = _private_settings(settings, storage, Path(folder) / storage)
            on_stage(f"{storage} storage: starting a private broker on {private.kafka_bootstrap}")
            try:
                start_stack(private, only=["kafka"], timeout=60)
                runs[storage] = asyncio.run(_measure(private, records, size, in_flight, on_stage))
                runs[storage]["restart"] = _restart(private, records, on_stage)
            finally:
                stop_stack(private)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "records": records,
        "record_bytes": size,
        "in_flight": in_flight,
        "partitions": PARTITIONS,
        "storages": runs,
        "s3_vs_memory": {
            mode: round(runs["memory"][mode]["records_per_second"] / runs["s3"][mode]["records_per_second"], 1)
            for mode in ("produce_one_per_batch", "produce_batched", "consume")
            if runs["s3"][mode]["records_per_second"]
        },
        "cpu_count": psutil.cpu_count(),
        "load_average_1min": round(psutil.getloadavg()[0], 2),
    }


def _private_settings(settings: Settings, storage: Storage, state_dir: Path) -> Settings:
    kafka, s3 = free_ports(2)
    return settings.model_copy(
        update={
            "state_dir": state_dir,
            "kafka_bootstrap": f"127.0.0.1:{kafka}",
            "s3_endpoint": f"127.0.0.1:{s3}",
            "broker_store_endpoint": f"127.0.0.1:{free_port_block(12)}",
            "broker_storage": storage,
            "producer_max_batch_size": settings.producer_max_batch_size or 1,
        }
    )


async def _measure(
    settings: Settings, records: int, size: int, in_flight: int, on_stage: Callable[[str], None]
) -> dict[str, Any]:
    storage = settings.broker_storage
    one, batched = "bench.one-per-batch", "bench.batched"
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in (one, batched)])
    finally:
        await admin.close()
    on_stage(f"{storage} storage: producing {records} records, one per batch")
    result = {"produce_one_per_batch": await _produce(settings, one, records, size, in_flight, batched=False)}
    on_stage(f"{storage} storage: producing {records} records, batched")
    result["produce_batched"] = await _produce(settings, batched, records, size, in_flight, batched=True)
    on_stage(f"{storage} storage: a consumer group reads and commits them")
    result["consume"] = await _consume(settings, one, records)
    return result


async def _produce(
    settings: Settings, topic: str, records: int, size: int, in_flight: int, *, batched: bool
) -> dict[str, Any]:
    options: dict[str, Any] = {"acks": "all"}
    if batched:
        options |= {"max_batch_size": 16384, "linger_ms": 5}
    else:
        options["max_batch_size"] = producer_options(settings)["max_batch_size"]
    value = b"x" * size
    latencies: list[float] = []
    slots = asyncio.Semaphore(in_flight)
    async with kafka_producer(settings, **options) as producer:

        async def one(i: int) -> None:
            async with slots:
                sent = time.perf_counter()
                await producer.send_and_wait(topic, value, key=str(i).encode())
                latencies.append(time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(records)))
        seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "records_per_second": round(records / seconds, 1)} | _percentiles(
        latencies, "latency"
    )


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.at: float | None = None

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned and self.at is None:
            self.at = time.perf_counter()


async def _consume(settings: Settings, topic: str, records: int) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        **connection_options(settings),
        group_id=GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        session_timeout_ms=int(settings.broker_session_timeout * 1000),
        heartbeat_interval_ms=max(100, int(settings.broker_session_timeout * 1000) // 3),
    )
    assigned = _Assigned()
    subscribed = time.perf_counter()
    await consumer.start()
    consumer.subscribe([topic], listener=assigned)
    read, commits = 0, []
    try:
        deadline = time.monotonic() + 300
        while read < records and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=100)
            got = sum(len(batch) for batch in batches.values())
            if not got:
                continue
            read += got
            committing = time.perf_counter()
            await consumer.commit()
            commits.append(time.perf_counter() - committing)
        done = time.perf_counter()
    finally:
        await consumer.stop()
    joined = assigned.at or done
    reading = done - joined
    return {
        "records": read,
        "group_join_seconds": round(joined - subscribed, 2),
        "seconds": round(reading, 2),
        "records_per_second": round(read / reading, 1) if reading else 0.0,
        "commits": len(commits),
    } | _percentiles(commits, "commit")


def _restart(settings: Settings, records: int, on_stage: Callable[[str], None]) -> dict[str, Any]:
    """SIGKILL the broker, restart it the way ``modstream stack restart kafka`` does; then
    count what is left of the records produced one per batch and the group's commits."""
    on_stage(f"{settings.broker_storage} storage: SIGKILL and restart")
    (status,) = stack_status(settings, ["kafka"])
    assert status.pid is not None
    broker = psutil.Process(status.pid)
    broker.kill()
    broker.wait(10)
    started = time.perf_counter()
    restart_server(settings, "kafka", timeout=60)
    answered = time.perf_counter() - started
    left, committed = asyncio.run(_left(settings, "bench.one-per-batch"))
    return {
        "seconds_until_answering": round(answered, 2),
        "records_left": left,
        "records_produced": records,
        "committed_offsets_left": committed,
    }


async def _left(settings: Settings, topic: str) -> tuple[int, int]:
    """How many records of ``topic`` can be read from the beginning, and the sum of the
    group's committed offsets (0 when the topic or the commits are gone)."""
    consumer = AIOKafkaConsumer(
        **connection_options(settings), group_id=GROUP, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return 0, 0
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        committed = sum([await consumer.committed(tp) or 0 for tp in tps])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        read = 0
        while batches := await consumer.getmany(timeout_ms=2000):
            read += sum(len(batch) for batch in batches.values())
        return read, committed
    finally:
        await consumer.stop()


def _percentiles(seconds: list[float], name: str) -> dict[str, float]:
    if not seconds:
        return {}
    ordered = sorted(seconds)
    return {
        f"{name}_p50_ms": round(statistics.median(ordered) * 1000, 1),
        f"{name}_p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        f"{name}_max_ms": round(ordered[-1] * 1000, 1),
    }
