"""The local stack supervisor against real processes: start, status, stop by PID, failures,
and the broker's durable storage across a SIGKILL and ``modstream stack restart kafka``."""

import asyncio
import os
import signal
import socket
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from confluent_kafka import OFFSET_BEGINNING, OFFSET_STORED, Consumer
from confluent_kafka import TopicPartition as ConfluentPartition
from modstream.core.kafka import connection_options, kafka_producer
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.stack import StackError, stack_status, start_stack, stop_stack
from modstream.stack.probes import kafka_answers

from tests.commands import modstream
from tests.conftest import loopback_settings

pytestmark = pytest.mark.integration


def test_status_shows_every_server_answering(stack_settings: Settings) -> None:
    statuses = {s.name: s for s in stack_status(stack_settings)}
    assert set(statuses) == {"kafka", "s3", "redis", "triton", "worker", "dashboard", "archive", "statements"}
    for name in ("kafka", "s3", "redis", "triton"):
        status = statuses[name]
        assert status.running and status.answering and status.pid, name
        assert status.log_path.is_file() and status.log_path.is_relative_to(stack_settings.state_dir)
    assert not any(statuses[name].running for name in ("worker", "dashboard", "archive", "statements"))


def test_start_is_idempotent(stack_settings: Settings) -> None:
    before = {s.name: s.pid for s in stack_status(stack_settings)}
    events: list[tuple[str, str]] = []
    start_stack(stack_settings, only=["kafka", "redis"], on_event=lambda s, m: events.append((s, m)))
    assert ("kafka", "already running") in events and ("redis", "already running") in events
    assert {s.name: s.pid for s in stack_status(stack_settings)} == before


def test_stop_by_pid_then_status_shows_down(tmp_path: Path) -> None:
    settings = loopback_settings(tmp_path, broker_storage="s3")
    try:
        started = start_stack(settings, only=["redis", "kafka"], timeout=60)
        # The broker keeps its data in its store: the store starts first, with it.
        assert [s.name for s in started] == ["broker-store", "redis", "kafka"]
        names = ["redis", "kafka", "broker-store"]
        pids = {s.name: s.pid for s in stack_status(settings, names)}
        assert all(pids.values())
        assert sorted(stop_stack(settings, only=names)) == ["broker-store", "kafka", "redis"]
        for status in stack_status(settings, names):
            assert not status.running and not status.answering and status.pid is None
        assert not any(
            psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids.values() if pid
        )
        assert not (tmp_path / "pids" / "redis.pid").exists()
        assert stop_stack(settings, only=names) == []
    finally:
        stop_stack(settings)


def test_a_stale_pid_file_is_never_signalled(tmp_path: Path) -> None:
    settings = loopback_settings(tmp_path)
    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "redis.pid").write_text("1")  # PID 1 runs something else entirely
    assert stop_stack(settings, only=["redis"]) == []
    assert psutil.pid_exists(1)


def test_port_taken_by_someone_else_is_a_clear_error(tmp_path: Path) -> None:
    settings = loopback_settings(tmp_path)
    port = int(settings.redis_url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(StackError) as caught:
            start_stack(settings, only=["redis"], timeout=20)
    message = str(caught.value)
    assert message.startswith("redis (127.0.0.1:") and "exited with code" in message
    assert str(tmp_path / "logs" / "redis.log") in message


def test_triton_that_cannot_load_its_models_names_itself_and_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "repository" / "moderation"
    (broken / "1").mkdir(parents=True)
    (broken / "config.pbtxt").write_text('name: "moderation"\nplatform: "no_such_platform"\n')
    settings: Settings = loopback_settings(tmp_path / "state", model_repository=tmp_path / "repository")
    try:
        with pytest.raises(StackError) as caught:
            start_stack(settings, only=["triton"], timeout=60)
    finally:
        stop_stack(settings, only=["triton"])
    message = str(caught.value)
    assert message.startswith("triton (127.0.0.1:")
    assert str(tmp_path / "state" / "logs" / "triton.log") in message


def test_regions_left_by_a_killed_triton_are_removed_by_down(tmp_path: Path) -> None:
    settings = loopback_settings(tmp_path)
    start_stack(settings, only=["triton"], timeout=120)
    (triton,) = stack_status(settings, ["triton"])
    assert triton.pid is not None
    stubs = psutil.Process(triton.pid).children(recursive=True)
    regions = [a for stub in stubs for a in stub.cmdline() if a.startswith("triton_python_backend_shm_region_")]
    assert regions, "the Python backend stubs name their regions"
    os.killpg(triton.pid, signal.SIGKILL)  # a crash: nobody cleans up
    psutil.wait_procs([psutil.Process(triton.pid), *stubs], timeout=10)
    assert all((Path("/dev/shm") / r).exists() for r in regions)

    assert stop_stack(settings, only=["triton"]) == []  # nothing left running to stop
    assert not any((Path("/dev/shm") / r).exists() for r in regions)


RECORDS = 2_000
TOPIC = "durable"
GROUP = "durable-readers"


def test_the_broker_on_s3_keeps_records_and_commits_across_a_sigkill_and_restart(tmp_path: Path) -> None:
    """Records produced with acks=all and a group's commits, the broker SIGKILLed, then
    ``modstream stack restart kafka``: every record is there (read by librdkafka, a client
    nobody here wrote), the group's commits too, and the group resumes where it committed."""
    settings = loopback_settings(tmp_path, broker_storage="s3")
    try:
        start_stack(settings, only=["kafka"], timeout=60)
        # Its data lives in its own stack's store, so two stacks never share it.
        store = ObjectStore(settings.model_copy(update={"s3_endpoint": settings.broker_store_endpoint}))
        store.check_bucket(settings.broker_bucket)
        assert (tmp_path / "data" / "broker-store").is_dir()
        produced, commits = asyncio.run(_produce_and_commit(settings))
        assert len(produced) == RECORDS and len(commits) == 4

        broker = psutil.Process(int((tmp_path / "pids" / "kafka.pid").read_text()))
        broker.kill()  # SIGKILL: no chance to flush anything
        broker.wait(10)
        assert not kafka_answers(settings.kafka_bootstrap)
        started = time.monotonic()
        restart = modstream(settings, "stack", "restart", "kafka", timeout=120)
        assert restart.returncode == 0, restart.stdout + restart.stderr
        assert f"kafka answers on {settings.kafka_bootstrap}" in restart.stdout
        (status,) = stack_status(settings, ["kafka"])
        assert status.answering and status.pid not in (None, broker.pid)
        print(f"\nbroker restarted and answering in {time.monotonic() - started:.1f} s")

        assert _committed(settings) == commits
        everything = _read(settings, "durable-check", {p: OFFSET_BEGINNING for p in commits}, RECORDS)
        assert everything == produced
        resumed = _read(settings, GROUP, {p: OFFSET_STORED for p in commits}, RECORDS - sum(commits.values()))
        assert resumed == {at: value for at, value in produced.items() if at[1] >= commits[at[0]]}
    finally:
        stop_stack(settings)


def test_the_broker_on_memory_storage_needs_no_s3_and_starts_empty(tmp_path: Path) -> None:
    settings = loopback_settings(tmp_path, broker_storage="memory")
    try:
        assert [s.name for s in start_stack(settings, only=["kafka"], timeout=60)] == ["kafka"]
        asyncio.run(_create_topic(settings))
        status = stack_status(settings, ["kafka"])[0]
        assert status.pid and "memory://tansu/" in psutil.Process(status.pid).cmdline()
        assert modstream(settings, "stack", "restart", "kafka", timeout=120).returncode == 0
        assert asyncio.run(_topics(settings)) == set()
    finally:
        stop_stack(settings)


async def _create_topic(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()


async def _topics(settings: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        return {name for name in await admin.list_topics() if not name.startswith("__")}
    finally:
        await admin.close()


async def _produce_and_commit(settings: Settings) -> tuple[dict[tuple[int, int], bytes], dict[int, int]]:
    """RECORDS records acknowledged by the broker (acks=all), by (partition, offset); then
    the group commits half of each partition. Records batch as clients normally batch them
    (the local stack's one-record batches are for end offsets, which nothing here asks for)."""
    await _create_topic(settings)
    async with kafka_producer(settings, acks="all", max_batch_size=16384, linger_ms=5) as producer:
        values = [f"record-{i}".encode() for i in range(RECORDS)]
        sent = [await producer.send(TOPIC, value, key=str(i).encode()) for i, value in enumerate(values)]
        acknowledged = await asyncio.gather(*sent)
    produced = {(meta.partition, meta.offset): value for meta, value in zip(acknowledged, values, strict=True)}
    per_partition = Counter(partition for partition, _ in produced)
    commits = {partition: count // 2 for partition, count in per_partition.items()}
    consumer = AIOKafkaConsumer(**connection_options(settings), group_id=GROUP, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(TOPIC, p) for p in commits])
        await consumer.commit({TopicPartition(TOPIC, p): OffsetAndMetadata(o, "") for p, o in commits.items()})
    finally:
        await consumer.stop()
    return produced, commits


def _confluent(settings: Settings, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


def _committed(settings: Settings) -> dict[int, int]:
    consumer = _confluent(settings, GROUP)
    try:
        found = consumer.committed([ConfluentPartition(TOPIC, p) for p in range(4)], timeout=30)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}


def _read(settings: Settings, group: str, start: dict[int, int], count: int) -> dict[tuple[int, int], bytes]:
    """``count`` records from ``start`` (an offset or OFFSET_STORED per partition), by
    (partition, offset), by assignment (no group join to wait for); then a few idle polls
    to show nothing more is there."""
    consumer = _confluent(settings, group)
    consumer.assign([ConfluentPartition(TOPIC, p, offset) for p, offset in start.items()])
    found: dict[tuple[int, int], bytes] = {}
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                if len(found) >= count:
                    break
                continue
            partition, offset, value = message.partition(), message.offset(), message.value()
            assert message.error() is None and partition is not None and offset is not None, message.error()
            found[(partition, offset)] = value or b""
    finally:
        consumer.close()
    return found


def test_records_written_after_a_broker_sigkill_do_not_overwrite_acknowledged_ones(tmp_path: Path) -> None:
    """The pipeline's case: records acknowledged one per batch, the broker SIGKILLed and
    restarted, then more records to the same partitions: all of them are there. (With the
    broker's bucket on nanio, which ignores conditional writes, 103 of 400 were left.)"""
    settings = loopback_settings(tmp_path, broker_storage="s3")
    try:
        start_stack(settings, only=["kafka"], timeout=60)
        before = asyncio.run(_produce(settings, "before", create=True))
        broker = psutil.Process(int((tmp_path / "pids" / "kafka.pid").read_text()))
        broker.kill()
        broker.wait(10)
        assert modstream(settings, "stack", "restart", "kafka", timeout=120).returncode == 0
        after = asyncio.run(_produce(settings, "after"))
        everything = _read(settings, "overwrite-check", {p: OFFSET_BEGINNING for p in range(4)}, 2 * WRITES)
        assert sorted(everything.values()) == sorted([*before, *after])
    finally:
        stop_stack(settings)


WRITES = 200


async def _produce(settings: Settings, label: str, create: bool = False) -> list[bytes]:
    """WRITES records acknowledged one per batch (the local stack's producer settings)."""
    if create:
        await _create_topic(settings)
    values = [f"{label}-{i}".encode() for i in range(WRITES)]
    async with kafka_producer(settings) as producer:
        await asyncio.gather(*[producer.send_and_wait(TOPIC, value) for value in values])
    return values
