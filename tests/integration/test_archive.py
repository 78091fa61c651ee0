"""The decision archive on real servers: records in = records queryable, once each."""

import re
from collections import Counter

import pyarrow.fs as pafs
import pytest
from modstream.core.archive import open_archive, s3_filesystem
from modstream.core.events import ModerationDecision
from modstream.core.settings import Settings

from tests.archive import Produce, archive_in_process, private_archive, traffic

pytestmark = pytest.mark.integration
KEY = re.compile(
    r"^(decisions|verdicts|shadow|unreadable)/date=(\d{4}-\d{2}-\d{2})/part-\d{8}T\d{6}Z-[0-9a-f]{8}\.parquet$"
)


async def test_every_record_in_is_queryable_once_replays_and_bad_records_included(stack_settings: Settings) -> None:
    settings = (await private_archive(stack_settings)).model_copy(
        update={"archive_flush_seconds": 1.0, "archive_web_port": 0}
    )
    records = list(traffic(300, seed=1))
    producer = Produce(settings)
    for table, record in records:
        producer.record(table, record)
    for table, record in records[:40]:  # a producer's retry, or a replayed partition
        producer.record(table, record)
    producer.send("decisions", b"{not json", "bad-1")
    producer.send("verdicts", ModerationDecision.model_validate(records[0][1].model_dump()).to_bytes(), "bad-2")
    producer.flush()

    await archive_in_process(settings)

    expected = Counter(table for table, _ in records)
    with open_archive(settings) as archive:
        counts = {t: archive.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (*expected, "unreadable")}  # type: ignore[index]
        raw = archive.execute("SELECT count(*) FROM decisions_files").fetchone()[0]  # type: ignore[index]
        unreadable = archive.execute("SELECT topic, error FROM unreadable ORDER BY topic").fetchall()
        first: ModerationDecision = records[0][1]  # type: ignore[assignment]
        row = archive.execute(
            "SELECT scores, thresholds['nsfw'].block_at, model_version, audit_rate, date FROM decisions "
            "WHERE decision_id = ?",
            [first.decision_id],
        ).fetchone()
    assert counts == {**expected, "unreadable": 2}
    assert raw == expected["decisions"] + sum(1 for table, _ in records[:40] if table == "decisions")
    assert [topic for topic, _ in unreadable] == [settings.topic_decisions, settings.topic_review_verdicts]
    assert "not a ReviewVerdict" in unreadable[1][1]
    assert row == (first.scores, 0.85, "1", 0.05, first.occurred_at.date().isoformat())

    files = s3_filesystem(settings).get_file_info(pafs.FileSelector(settings.archive_bucket, recursive=True))
    keys = [f.path.removeprefix(f"{settings.archive_bucket}/") for f in files if f.type == pafs.FileType.File]
    assert keys and all(KEY.match(key) for key in keys), keys
    assert {KEY.match(k).group(2) for k in keys if k.startswith("decisions/")} == {"2026-11-27", "2026-11-28"}  # type: ignore[union-attr]
