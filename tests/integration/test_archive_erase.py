"""Erasing uploads from the archive: their rows leave the tables and every file on the store
that held them, once the test has seen them there; everything else stays, and so do the Kafka
offsets the tables record (the archiver's replay still skips what is stored)."""

from collections.abc import Iterable

import pytest
from modstream.archive.erase import erase_events
from modstream.core import lake
from modstream.core.archive import DECISIONS, TABLES
from modstream.core.events import ReviewVerdict
from modstream.core.settings import Settings

from tests.archive import Produce, archive_in_process, ids_in_files, private_archive, traffic

pytestmark = pytest.mark.integration


def total(settings: Settings, table: str) -> int:
    stored = lake.find_table(settings, TABLES[table])
    assert stored is not None
    return len(stored.scan(selected_fields=("event_id",)).to_arrow())


def rows_of(settings: Settings, table: str, events: Iterable[str]) -> int:
    from pyiceberg.expressions import In

    stored = lake.find_table(settings, TABLES[table])
    assert stored is not None
    return len(stored.scan(row_filter=In(term="event_id", literals=set(events))).to_arrow())


async def test_erased_uploads_leave_every_table_and_file_and_nothing_else_does(stack_settings: Settings) -> None:
    settings = (await private_archive(stack_settings)).model_copy(
        update={"archive_flush_seconds": 1.0, "archive_flush_records": 50, "archive_web_port": 0}
    )
    records = list(traffic(240, seed=5))
    producer = Produce(settings)
    for table, record in records:
        producer.record(table, record)
    producer.flush()
    await archive_in_process(settings)

    reviewed = sorted({r.event_id for t, r in records if isinstance(r, ReviewVerdict)})
    erased = reviewed[:3]
    # Positive signal first: each is in both tables, and in files on the store.
    assert rows_of(settings, "decisions", erased) == 3 and rows_of(settings, "verdicts", erased) >= 3
    for table in ("decisions", "verdicts"):
        assert set(erased) <= ids_in_files(settings, table)
    totals = {table: total(settings, table) for table in ("decisions", "verdicts")}
    stored = lake.find_table(settings, DECISIONS)
    assert stored is not None
    offsets = lake.written_offsets(stored)

    done = {e.table: e for e in erase_events(settings, erased)}

    assert done["decisions"].rows == 3 and done["verdicts"].rows >= 3
    for table in ("decisions", "verdicts"):
        assert rows_of(settings, table, erased) == 0
        assert not set(erased) & ids_in_files(settings, table), f"a file of {table} still holds an erased upload"
        assert done[table].files_deleted > 0
    assert total(settings, "decisions") == totals["decisions"] - 3
    assert total(settings, "verdicts") == totals["verdicts"] - done["verdicts"].rows
    stored.refresh()
    assert lake.written_offsets(stored) == offsets
    assert erase_events(settings, erased) == []  # nothing left to erase
