"""What an erasure costs against a large archive: ``modstream bench --erasure 1000000``.

An archive of its own (a bucket, Redis database 15, a banks topic) is filled with ``decisions``
decisions spread over 30 days and the verdicts reviewers gave on some of them, written straight
to the Iceberg tables (as the archiver's commits, then its maintenance, leave them: one file per
table and day), not through Kafka, which the archive benchmark measures already. Then single
uploads, each on another day, are erased one by one as ``modstream erase --event`` does, and a
subject's uploads spread over several days at once (``--subject``). The baseline in the same
run: finding the same upload in the archive (what any read of it costs), so the ratio says
what removing it, and every file that held it, adds.
"""

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modstream.archive.bench import bench_settings, synthetic
from modstream.archive.erase import held
from modstream.archive.maintenance import maintain
from modstream.core import lake
from modstream.core.archive import DECISIONS, VERDICTS, Table
from modstream.core.events import ModerationDecision, ReviewVerdict
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.core.topics import ensure_topics
from modstream.erasure.run import Erasure

TEMPLATE = 10_000  # decisions generated as records, then repeated with new ids to the size asked
SINGLE = 5  # uploads erased one at a time
SUBJECT_UPLOADS = 10  # uploads of the subject erased at once


def run_erasure_bench(settings: Settings, decisions: int, on_stage: Callable[[str], None]) -> dict[str, Any]:
    private = bench_settings(settings).model_copy(update={"topic_banks": f"bench-{uuid.uuid4().hex[:8]}.banks"})
    asyncio.run(ensure_topics(private))
    objects = ObjectStore(private)
    for bucket in (private.archive_bucket, private.uploads_bucket):
        objects.ensure_bucket(bucket)
    on_stage(f"writing {decisions:,} decisions over 30 days and their verdicts to s3://{private.archive_bucket}")
    started = time.perf_counter()
    targets = _fill(private, decisions)
    written = time.perf_counter() - started
    on_stage("maintenance: one file per table and day, as the archiver's leaves them")
    maintain(private, retain=timedelta(0), grace=timedelta(0))
    size = _size(private)
    for event_id in targets["single"] + targets["subject"]:
        objects.put(private.uploads_bucket, f"bench/{event_id}.jpg", b"\xff\xd8 an image", "image/jpeg")

    on_stage(f"erasing {SINGLE} uploads one at a time, then a subject's {SUBJECT_UPLOADS} at once")
    lookups, single, receipts = [], [], []
    for event_id in targets["single"]:
        began = time.perf_counter()
        assert held(private, event_ids=[event_id]), f"upload {event_id} is not in the archive"
        lookups.append(time.perf_counter() - began)
        receipt = asyncio.run(_erase(private, event_ids=[event_id]))
        single.append(receipt.seconds)
        receipts.append(receipt)
    subject = asyncio.run(_erase(private, subject=targets["subject_id"][0]))
    files = [sum(_files_deleted(p.note) for p in r.places) for r in receipts]
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "archive": {"decisions": decisions, **size, "write_seconds": round(written, 1)},
        "lookup_seconds_median": round(statistics.median(lookups), 3),
        "erase_one_seconds_median": round(statistics.median(single), 3),
        "erase_one_seconds": [round(s, 3) for s in single],
        "erase_vs_lookup": round(statistics.median(single) / statistics.median(lookups), 1),
        "files_deleted_per_erasure_median": statistics.median(files),
        "search_seconds_median": round(statistics.median(r.search_seconds for r in receipts), 3),
        "seconds_by_place_median": {
            p.name: round(statistics.median(r.places[i].seconds for r in receipts), 3)
            for i, p in enumerate(receipts[0].places)
        },
        "removed_by_place": {p.name: p.removed for p in receipts[0].places},
        "subject": {
            "uploads": len(subject.event_ids),
            "seconds": round(subject.seconds, 3),
            "rows_removed": sum(p.removed for p in subject.places if p.name.startswith("archive")),
        },
    }


async def _erase(settings: Settings, **asked: Any) -> Any:
    erasure = Erasure(settings)
    try:
        return await erasure.erase(requested_by="bench", **asked)
    finally:
        await erasure.close()


def _fill(settings: Settings, decisions: int) -> dict[str, list[str]]:
    """Decisions (and verdicts) to the size asked: a template of records made once, repeated
    with fresh event and decision ids. Some are marked as the uploads to erase."""
    made = list(synthetic(min(TEMPLATE, decisions), days=30.0))
    template = DECISIONS.rows([r for kind, r in made if isinstance(r, ModerationDecision)])
    reviewed = VERDICTS.rows([r for kind, r in made if isinstance(r, ReviewVerdict)])
    copies = -(-decisions // len(template))
    rng = np.random.default_rng(1)
    single = [int(i) for i in rng.choice(len(template), SINGLE, replace=False)]
    subject_rows = [int(i) for i in rng.choice(len(template), SUBJECT_UPLOADS, replace=False)]
    targets: dict[str, list[str]] = {"single": [], "subject": [], "subject_id": ["bench-subject"]}
    for copy in range(copies):
        rows = template.slice(0, min(len(template), decisions - copy * len(template)))
        ids = [uuid.uuid4().hex for _ in range(len(rows))]
        if copy == 0:
            targets["single"] = [ids[i] for i in single]
            targets["subject"] = [ids[i] for i in subject_rows]
        subjects: list[str | None] = [None] * len(rows)
        for i in subject_rows if copy == 0 else ():
            subjects[i] = "bench-subject"
        new = _with(rows, event_id=ids, decision_id=[uuid.uuid4().hex for _ in ids], subject=subjects)
        new = _with(new, key=[f"bench/{i}.jpg" for i in ids])
        _append(settings, DECISIONS, new)
        by_old = dict(zip(rows.column("event_id").to_pylist(), ids, strict=True))
        verdicts = reviewed.filter(pc.is_in(reviewed.column("event_id"), value_set=rows.column("event_id")))
        renamed = [by_old[e] for e in verdicts.column("event_id").to_pylist()]
        _append(settings, VERDICTS, _with(verdicts, event_id=renamed, verdict_id=[uuid.uuid4().hex for _ in renamed]))
    return targets


def _with(rows: pa.Table, **columns: list[Any]) -> pa.Table:
    for name, values in columns.items():
        at = rows.schema.get_field_index(name)
        rows = rows.set_column(at, rows.schema.field(at), pa.array(values, type=rows.schema.field(at).type))
    return rows


def _append(settings: Settings, table: Table, rows: pa.Table) -> None:
    stored = lake.open_table(settings, table)
    lake.committing(stored, lambda t: t.append(rows, snapshot_properties=lake.carried(t)))


def _size(settings: Settings) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    for table in (DECISIONS, VERDICTS):
        stored = lake.find_table(settings, table)
        assert stored is not None
        files = stored.inspect.files()
        sizes[table.name] = {
            "rows": sum(files.column("record_count").to_pylist()),
            "files": len(files),
            "megabytes": round(sum(files.column("file_size_in_bytes").to_pylist()) / 1e6, 1),
        }
    return sizes


def _files_deleted(note: str) -> int:
    """From a receipt's archive note ("3 files deleted, ...")."""
    return int(note.split(" files deleted")[0]) if " files deleted" in note else 0
