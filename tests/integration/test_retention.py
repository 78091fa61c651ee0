"""Retention on the real stack (Kafka, S3, the archiver process on a schedule, then the CLI):
a tenant's images, decisions, verdicts and embeddings older than its limits leave the tables,
the files and the object store once they were seen there; what is younger, another tenant's
data, and an image whose restriction can still be appealed stay."""

import asyncio
import base64
import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from modstream.core import lake
from modstream.core.archive import DECISIONS, VERDICTS, Table
from modstream.core.events import Embedding, ModerationDecision, Outcome
from modstream.core.ports import free_port
from modstream.core.retention import KINDS
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.storage import ObjectStore
from modstream.explain.store import event_prefix
from modstream.stack import start_service, stop_stack

from tests.archive import (
    Produce,
    archive_in_process,
    decision,
    ids_in_files,
    private_archive,
    rows_in_files,
    verdict_for,
)
from tests.commands import modstream
from tests.scrape import scrape, total

pytestmark = pytest.mark.integration
KEEPER, FOREVER = "keeper", "forever"
AGES = (400, 100, 15, 1)  # days


def aged(rng: random.Random, tenant: str, days: int, settings: Settings, outcome: Outcome) -> ModerationDecision:
    made = decision(rng, datetime.now(UTC) - timedelta(days=days), tenant=tenant)
    vector = base64.b64encode(bytes(range(16))).decode()
    return made.model_copy(
        update={
            "bucket": settings.uploads_bucket,
            "key": f"{tenant}/{days}/{made.event_id}.jpg",
            "decision": outcome,
            "embedding": Embedding(model="efficientnet_lite0:1", dims=8, values_base64=vector),
        }
    )


def rows(settings: Settings, table: Table) -> dict[str, dict[str, object]]:
    """The table's rows as they are now, by event id."""
    stored = lake.find_table(settings, table)
    assert stored is not None
    return {str(r["event_id"]): r for r in stored.scan().to_arrow().to_pylist()}


def with_embedding(settings: Settings) -> set[str]:
    """The event ids of every row with an embedding in any data file of the decisions table."""
    found = rows_in_files(settings, "decisions", ["event_id", "embedding"])
    return {str(r["event_id"]) for r in found if r["embedding"]}


async def test_each_kind_older_than_its_limit_goes_and_nothing_else(stack_settings: Settings, tmp_path: Path) -> None:
    settings = await private_archive(stack_settings)
    policies = shutil.copytree(PROJECT_ROOT / "config" / "policies", tmp_path / "policies")
    limits = {"images_days": 20, "decisions_days": 200, "verdicts_days": 30, "embeddings_days": 10}
    (policies / "tenants" / f"{KEEPER}.yaml").write_text(json.dumps({"version": "r1", "retention": limits}))
    settings = settings.model_copy(
        update={"policies_dir": policies, "archive_retention_seconds": 2.0, "archive_web_port": free_port()}
    )
    objects = ObjectStore(settings)
    objects.ensure_bucket(settings.uploads_bucket)
    rng = random.Random(3)
    made = {(t, d): aged(rng, t, d, settings, Outcome.ALLOW) for t in (KEEPER, FOREVER) for d in AGES}
    restricted = aged(rng, KEEPER, 100, settings, Outcome.BLOCK)  # appealable for 183 days
    producer = Produce(settings)
    for d in [*made.values(), restricted]:
        objects.put(d.bucket, d.key, b"\xff\xd8 not really a photo", "image/jpeg")
        producer.record("decisions", d)
        producer.record("verdicts", verdict_for(d, rng).model_copy(update={"occurred_at": d.occurred_at}))
    producer.flush()
    await archive_in_process(settings)
    # Occlusion maps made of three images (as the explain room keeps them): they go with theirs.
    mapped = [made[(KEEPER, 100)], made[(KEEPER, 15)], restricted]
    for d in mapped:
        objects.put(settings.archive_bucket, f"{event_prefix(d.event_id)}m/1.json", b"{}", "application/json")
    assert all(objects.versions(settings.archive_bucket, f"{event_prefix(d.event_id)}m/1.json") for d in mapped)
    # Positive signals: every decision, verdict, embedding and image is there first.
    everything = {d.event_id for d in [*made.values(), restricted]}
    assert set(rows(settings, DECISIONS)) == set(rows(settings, VERDICTS)) == everything
    assert everything <= with_embedding(settings)
    assert all(objects.versions(d.bucket, d.key) for d in [*made.values(), restricted])

    start_service(settings, "archive", timeout=90)  # enforces every 2 s
    try:
        metrics = f"http://127.0.0.1:{settings.archive_web_port}/metrics"
        for _ in range(120):
            if total(scrape(metrics), "modstream_erased_items_total", cause="retention", place="images") >= 1:
                break
            await asyncio.sleep(0.5)
        samples = scrape(metrics)
        removed = {p: total(samples, "modstream_erased_items_total", cause="retention", place=p) for p in KINDS}
    finally:
        stop_stack(settings, only=["archive"])
    # Over 200 days: the decision; over 30: the verdicts (the restricted one's too); over 10:
    # the embeddings; over 20: the images, but the one still appealable.
    assert removed == {"images": 2, "decisions": 1, "verdicts": 3, "embeddings": 3}, removed

    keeper = {d: made[(KEEPER, d)].event_id for d in AGES}
    left = rows(settings, DECISIONS)
    assert set(left) == everything - {keeper[400]}
    assert set(rows(settings, VERDICTS)) == everything - {keeper[400], keeper[100], restricted.event_id}
    cleared = {e for e, r in left.items() if r["embedding"] is None}
    assert cleared == {keeper[100], keeper[15], restricted.event_id}
    in_files = with_embedding(settings)
    assert not in_files & (cleared | {keeper[400]}) and keeper[1] in in_files
    assert keeper[400] not in ids_in_files(settings, "decisions")
    gone = {d: not objects.versions(made[(KEEPER, d)].bucket, made[(KEEPER, d)].key) for d in AGES}
    assert gone == {400: True, 100: True, 15: False, 1: False}
    assert objects.versions(restricted.bucket, restricted.key)  # appealable: held back
    maps_left = [bool(objects.versions(settings.archive_bucket, f"{event_prefix(d.event_id)}m/1.json")) for d in mapped]
    assert maps_left == [False, True, True]  # the 100-day image's map went with it
    assert all(objects.versions(made[(FOREVER, d)].bucket, made[(FOREVER, d)].key) for d in AGES)

    again = modstream(settings, "archive", "retain")
    assert again.returncode == 0, again.stderr
    assert f"{KEEPER}: 0 images from before" in again.stdout and "1 held while appealable" in again.stdout
    assert f"{KEEPER}: 0 decisions" in again.stdout and FOREVER not in again.stdout
