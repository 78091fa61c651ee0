"""The decision archive on real servers: records in = records queryable, once each."""

from collections import Counter

import pytest
from modstream.core import lake
from modstream.core.archive import DECISIONS, UNREADABLE
from modstream.core.events import ModerationDecision
from modstream.core.lake import open_archive
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from pyiceberg.transforms import DayTransform

from tests.archive import Produce, archive_in_process, private_archive, traffic
from tests.offsets import ends as end_offsets

pytestmark = pytest.mark.integration


async def test_every_record_in_is_queryable_once_replays_and_bad_records_included(stack_settings: Settings) -> None:
    settings = (await private_archive(stack_settings)).model_copy(
        update={"archive_flush_seconds": 1.0, "archive_web_port": 0}
    )
    records = list(traffic(300, seed=1))
    producer = Produce(settings)
    for table, record in records:
        producer.record(table, record)
    for table, record in records[:40]:  # a producer's retry: the same records at new offsets
        producer.record(table, record)
    producer.send("decisions", b"{not json", "bad-1")
    producer.send("verdicts", ModerationDecision.model_validate(records[0][1].model_dump()).to_bytes(), "bad-2")
    producer.flush()
    # A decisions table made by an earlier layout, without a column added since: the
    # archiver adds it (schema evolution) rather than failing to append.
    ObjectStore(settings).ensure_bucket(settings.archive_bucket)
    earlier = DECISIONS.schema.remove(DECISIONS.schema.get_field_index("signals"))
    lake.catalog(settings).create_namespace_if_not_exists(settings.archive_bucket)
    with (
        lake.catalog(settings).create_table_transaction(
            lake.identifier(settings, DECISIONS),
            schema=earlier,
            location=lake.table_location(settings, DECISIONS),
            properties=lake.TABLE_PROPERTIES,
        ) as created,
        created.update_spec() as spec,
    ):
        spec.add_field("occurred_at", DayTransform(), lake.DAY_FIELD)

    await archive_in_process(settings)

    expected = Counter(table for table, _ in records)
    with open_archive(settings) as archive:
        counts = {t: archive.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (*expected, "unreadable")}  # type: ignore[index]
        unreadable = archive.execute("SELECT topic, error FROM unreadable ORDER BY topic").fetchall()
        first: ModerationDecision = records[0][1]  # type: ignore[assignment]
        row = archive.execute(
            "SELECT scores, thresholds['nsfw'].block_at, model_version, audit_rate, occurred_at FROM decisions "
            "WHERE decision_id = ?",
            [first.decision_id],
        ).fetchone()
    assert counts == {**expected, "unreadable": 2}
    assert [topic for topic, _ in unreadable] == [settings.topic_decisions, settings.topic_review_verdicts]
    assert "not a ReviewVerdict" in unreadable[1][1]
    assert row == (first.scores, 0.85, "1", 0.05, first.occurred_at)

    # Iceberg tables partitioned by day, whose snapshots record every offset they cover.
    stored = lake.open_table(settings, DECISIONS)
    assert "signals" in {f.name for f in stored.schema().fields}
    days = {p["partition"][lake.DAY_FIELD] for p in stored.inspect.partitions().to_pylist()}
    assert len(days) == 2  # traffic spans 2026-11-27 and 2026-11-28
    recorded = lake.written_offsets(stored)
    for place, offset in lake.written_offsets(lake.open_table(settings, UNREADABLE)).items():
        recorded[place] = max(recorded.get(place, 0), offset)
    ends = await end_offsets(settings, settings.topic_decisions)
    assert {p: recorded[(t, p)] for t, p in recorded if t == settings.topic_decisions} == {
        tp.partition: end for tp, end in ends.items() if end
    }
