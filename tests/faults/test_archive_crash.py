"""The archiver killed (SIGKILL) while it holds records not yet in a table, and right after
its table commits but before its Kafka commit: none lost, none stored twice, once a new
archiver has caught up; then maintenance leaves the rows as they were in fewer files."""

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import TopicPartition
from modstream.archive.maintenance import maintain
from modstream.bench.ledger import committed
from modstream.core import lake
from modstream.core.archive import TABLES
from modstream.core.lake import open_archive
from modstream.core.ports import free_port
from modstream.core.settings import Settings

from tests.archive import Produce, private_archive, start_archiver, traffic
from tests.offsets import wait_until_committed_to_end

pytestmark = pytest.mark.faults
IDS = {"decisions": "decision_id", "verdicts": "verdict_id", "shadow": "shadow_id"}


async def health(settings: Settings) -> dict[str, object] | None:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            response = await http.get(f"http://127.0.0.1:{settings.archive_web_port}/healthz")
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


async def committed_total(settings: Settings) -> int:
    total = 0
    for topic in (settings.topic_decisions, settings.topic_review_verdicts, settings.topic_shadow):
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        total += sum(
            max(offset, 0) for offset in (await committed(settings, settings.archive_group, partitions)).values()
        )
    return total


async def kill_while_holding(settings: Settings, archiver: subprocess.Popen[bytes], produced: list[int]) -> int:
    """SIGKILL the archiver once it holds read records that are in no file yet; returns how
    many records were produced but not committed at that moment (they must come back)."""
    async with asyncio.timeout(120):
        while True:
            state = await health(settings)
            if state is not None and state["last_durable"] and int(state["pending_records"]) >= 50:  # type: ignore[call-overload]
                os.killpg(archiver.pid, signal.SIGKILL)
                archiver.wait()
                break
            await asyncio.sleep(0.05)
    return produced[0] - await committed_total(settings)


def replayed(log: Path) -> int:
    """Records a restarted archiver read again and found already in their table."""
    return sum(
        json.loads(line).get("already_stored", 0) for line in log.read_text().splitlines() if '"archive commit"' in line
    )


async def test_sigkill_mid_flush_or_before_kafka_commit_loses_nothing_and_stores_nothing_twice(
    stack_settings: Settings, tmp_path: Path
) -> None:
    settings = (await private_archive(stack_settings)).model_copy(
        update={"archive_flush_seconds": 3.0, "archive_flush_records": 100_000, "archive_web_port": free_port()}
    )
    records = list(traffic(2400, seed=5))
    produced = [0]

    def produce() -> None:  # a steady stream, as the pipeline and the review service make one
        producer = Produce(settings)
        for i, (table, record) in enumerate(records):
            producer.record(table, record)
            produced[0] += 1
            if i % 40 == 39:
                producer.flush()
                time.sleep(0.25)
        producer.flush()

    log = tmp_path / "archive.log"
    feeder = threading.Thread(target=produce)
    archiver = start_archiver(settings, log)
    feeder.start()
    try:
        unfinished = [await kill_while_holding(settings, archiver, produced)]
        archiver = start_archiver(settings, log, dies_before_kafka_commit=True)
        assert await asyncio.to_thread(archiver.wait, 120) == -signal.SIGKILL
        archiver = start_archiver(settings, log)
        unfinished.append(await kill_while_holding(settings, archiver, produced))
        archiver = start_archiver(settings, log)
        await asyncio.to_thread(feeder.join, 300)
        for topic in (settings.topic_decisions, settings.topic_review_verdicts, settings.topic_shadow):
            await wait_until_committed_to_end(settings, settings.archive_group, topic, timeout=120)
    finally:
        archiver.terminate()
        archiver.wait(30)
    assert all(n > 0 for n in unfinished), f"a kill found nothing in flight: {unfinished}"
    assert archiver.returncode == 0, log.read_text()[-2000:]

    expected: dict[str, set[str]] = defaultdict(set)
    for table, record in records:
        expected[table].add(getattr(record, IDS[table]))
    with open_archive(settings) as archive:
        for table, ids in expected.items():
            found = [row[0] for row in archive.execute(f"SELECT {IDS[table]} FROM {table}").fetchall()]
            assert sorted(found) == sorted(ids), f"{table}: {len(found)} rows for {len(ids)} records"
    assert replayed(log) > 0, "no archiver read again what a table held: the crash was not where meant"

    # Maintenance on what the kills left: fewer files, the same rows, no file unaccounted for.
    before = {t: len(lake.scan(settings, TABLES[t])) for t in expected}
    done = {m.table: m for m in maintain(settings, retain=timedelta(0), grace=timedelta(0))}
    assert done["decisions"].files_after < done["decisions"].files_before
    assert {t: len(lake.scan(settings, TABLES[t])) for t in expected} == before
    stored = lake.open_table(settings, TABLES["decisions"])
    assert len(stored.snapshots()) == 1
    listed = set(stored.io.get_fs("s3").find(f"{stored.location().removeprefix('s3://')}/data"))  # type: ignore[attr-defined]
    assert listed == {path.removeprefix("s3://") for path in stored.inspect.files().column("file_path").to_pylist()}
