"""``modstream archive migrate``: an archive in the Parquet layout before Iceberg, records
stored twice included, moved into the tables row for row, counted, idempotent, and its old
files deleted only when asked."""

import io
import re
import uuid
from collections import Counter, defaultdict

import pyarrow.parquet as pq
import pytest
from modstream.archive.migrate import old_files
from modstream.core.archive import TABLES
from modstream.core.events import Record
from modstream.core.lake import open_archive
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore

from tests.archive import traffic
from tests.commands import modstream

pytestmark = pytest.mark.integration


def write_old_layout(settings: Settings, records: list[tuple[str, Record]]) -> int:
    """Parquet files as the archiver before Iceberg wrote them: per table and day, several
    parts; returns how many files."""
    store = ObjectStore(settings)
    store.ensure_bucket(settings.archive_bucket)
    groups: defaultdict[tuple[str, str], list[Record]] = defaultdict(list)
    for table, record in records:
        groups[(table, record.occurred_at.date().isoformat())].append(record)
    files = 0
    for (table, day), rows in groups.items():
        for part in (rows[: len(rows) // 2], rows[len(rows) // 2 :]):
            buffer = io.BytesIO()
            pq.write_table(TABLES[table].rows(part), buffer)
            key = f"{table}/date={day}/part-20261128T000000Z-{uuid.uuid4().hex[:8]}.parquet"
            store.put(settings.archive_bucket, key, buffer.getvalue(), "application/vnd.apache.parquet")
            files += 1
    return files


def counts(output: str) -> dict[str, tuple[int, int, int, int]]:
    """table -> (read, written, repeats, already in the table) from the command's lines."""
    found = re.findall(r"(\w+): \d+ files, (\d+) rows read = (\d+) written \+ (\d+) repeats.* \+ (\d+) already", output)
    return {table: (int(r), int(w), int(p), int(a)) for table, r, w, p, a in found}


def test_migrate_counts_every_row_is_idempotent_and_deletes_only_when_asked(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"archive_bucket": f"migrate-{uuid.uuid4().hex[:8]}"})
    records = list(traffic(200, seed=11))
    twice = records[:30]  # the old protocol could store a record twice
    files = write_old_layout(settings, records + twice)
    expected = Counter(table for table, _ in records)
    repeated = Counter(table for table, _ in twice)

    first = modstream(settings, "archive", "migrate")
    assert first.returncode == 0, first.stderr + first.stdout
    assert counts(first.stdout) == {t: (expected[t] + repeated[t], expected[t], repeated[t], 0) for t in expected}, (
        first.stdout
    )
    with open_archive(settings) as archive:
        for table in expected:
            ids = [r[0] for r in archive.execute(f"SELECT {TABLES[table].id_column} FROM {table}").fetchall()]
            assert len(ids) == len(set(ids)) == expected[table]

    again = modstream(settings, "archive", "migrate", "--delete-source")
    assert again.returncode == 0, again.stderr + again.stdout
    assert counts(again.stdout) == {t: (expected[t] + repeated[t], 0, repeated[t], expected[t]) for t in expected}
    assert f"deleted {files} old files" in again.stdout
    assert all(not old_files(settings, TABLES[t]) for t in expected)
    with open_archive(settings) as archive:
        assert archive.execute("SELECT count(*) FROM decisions").fetchone() == (expected["decisions"],)
