"""The archive with its catalog in a real PostgreSQL, as the containers run it: the archiver,
the dashboard and the CLI are separate processes that must all see the same tables."""

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from modstream.core import lake
from modstream.core.archive import DECISIONS, TABLES
from modstream.core.lake import open_archive
from modstream.core.settings import Settings
from pydantic import SecretStr

from tests.archive import Produce, archive_in_process, private_archive, traffic
from tests.postgres import Postgres, running_postgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres() -> Iterator[tuple[Postgres, str]]:
    """A PostgreSQL server and the URL of a database ``modstream`` owned by role ``modstream``,
    as docker-compose.yml makes them; the server is stopped by its PID afterwards."""
    with running_postgres() as server:
        yield server, server.create_database("modstream", owner="modstream")


def counts(settings: Settings) -> dict[str, int]:
    with open_archive(settings) as archive:
        return {t: archive.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


def stored_in_postgres(server: Postgres, settings: Settings) -> dict[str, str]:
    """Each table of this archive and its current metadata file, as the catalog's rows say."""
    rows = server.psql(
        "SELECT table_name, metadata_location FROM iceberg_tables "
        f"WHERE table_namespace = '{settings.archive_bucket}' ORDER BY table_name",
        database="modstream",
        user="modstream",
    )
    return dict(line.split("|", 1) for line in rows.splitlines())


async def test_archiver_dashboard_and_cli_share_a_postgresql_catalog(
    stack_settings: Settings, postgres: tuple[Postgres, str], tmp_path: Path
) -> None:
    server, url = postgres
    settings = (await private_archive(stack_settings)).model_copy(
        update={
            "archive_catalog": SecretStr(url),
            "archive_flush_seconds": 1.0,
            # A commit every 60 records: several small files per day, for the CLI to compact.
            "archive_flush_records": 60,
            "archive_web_port": 0,
            "archive_maintain_seconds": 0.0,
            # A state folder of its own: the local sqlite catalog would land here if used.
            "state_dir": tmp_path,
        }
    )
    records = list(traffic(160, seed=11))
    expected = Counter(table for table, _ in records)
    producer = Produce(settings)
    for table, record in records:
        producer.record(table, record)
    producer.flush()
    await archive_in_process(settings)

    # What the archiver committed is in PostgreSQL's catalog tables.
    in_postgres = stored_in_postgres(server, settings)
    assert set(in_postgres) == set(expected)
    assert counts(settings) == {**dict.fromkeys(TABLES, 0), **expected}

    # A second catalog (another process's, the dashboard's) finds the same tables at the same metadata.
    second = lake.catalog(settings)
    assert {name for _, name in second.list_tables(settings.archive_bucket)} == set(expected)
    for name, location in in_postgres.items():
        assert second.load_table((settings.archive_bucket, name)).metadata_location == location

    # A fresh process, the CLI, commits to the same tables through the same catalog:
    # compaction leaves one file per day, expiry every snapshot but the current one.
    stored = lake.find_table(settings, DECISIONS)
    assert stored is not None
    before = len(stored.inspect.files())
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "modstream.cli", "archive", "maintain", "--retain-hours", "0", "--grace-minutes", "0"],
        env={**os.environ, **settings.as_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert before > 2 and f"decisions: {before} → 2 data files" in done.stdout
    after = stored_in_postgres(server, settings)
    assert after["decisions"] != in_postgres["decisions"]
    decisions = lake.find_table(settings, DECISIONS)
    assert decisions is not None and decisions.metadata_location == after["decisions"]
    assert len(decisions.inspect.files()) == 2
    assert counts(settings) == {**dict.fromkeys(TABLES, 0), **expected}

    # Nothing went to a local sqlite catalog, in this process or the CLI's.
    assert not (tmp_path / "data" / "archive-catalog.db").exists()
