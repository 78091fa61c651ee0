"""Erasure on the real stack (Kafka, S3, Redis, Triton, a worker, the dashboard, the archiver):
a subject's uploads are first seen everywhere the system keeps something of them (the image,
its occlusion maps, the archive's tables and files, review jobs, the restriction and appeal
records, a bank entry made by a reviewer's remove, a worker's score cache, the dashboard), the
erasure is refused
while an appeal on one is in progress, then, once the appeal is decided, nothing of them is left
in any of those places, the receipt says what was removed where, and another person's upload
is untouched."""

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from modstream.bank.topic import publish, put_bank, read_banks
from modstream.core import lake
from modstream.core.archive import TABLES
from modstream.core.events import Bank, BankAction, ModerationDecision, entry_key, new_id
from modstream.core.kafka import kafka_consumer
from modstream.core.ports import free_ports
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.storage import ObjectStore
from modstream.core.topics import ensure_topics
from modstream.explain.served import Saliency
from modstream.explain.store import PREFIX, SaliencyStore
from modstream.ingest.sdk import UploadClient
from modstream.review.appeals import DUE, RESTRICTION
from modstream.review.audit import STREAM
from modstream.stack import start_service, stop_stack

from tests import images
from tests.archive import ids_in_files
from tests.commands import modstream
from tests.dashboard_helpers import make_users, try_log_in
from tests.offsets import wait_until_committed_to_end
from tests.records import first_records
from tests.scrape import scrape, total
from tests.workers import log_line, log_size, spawn_worker, stop_worker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
TENANT = "erasing"


@dataclass(frozen=True)
class Running:
    settings: Settings
    queue: str
    appeals: str
    bank: str
    tokens: dict[str, str]
    worker_log: Path

    def api(self, user: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.settings.dashboard_port}",
            headers={"authorization": f"Bearer {self.tokens[user]}"},
            timeout=60,
        )


@pytest.fixture
async def running(stack_settings: Settings, tmp_path: Path) -> AsyncIterator[Running]:
    tag = new_id()[:8]
    queue, bank = f"erase-{tag}", f"erased-{tag}"
    policies = shutil.copytree(PROJECT_ROOT / "config" / "policies", tmp_path / "policies")
    tenant = {  # every image to a person; appeals to a queue of this test's own
        "version": "erase-1",
        "double_review_rate": 0.0,
        "labels": {"sexual.any": {"review_at": 0.0, "block_at": 1.0, "queue": queue}},
        "appeals": {"queue": f"appeals-{tag}"},
    }
    (policies / "tenants" / f"{TENANT}.yaml").write_text(json.dumps(tenant))
    users = tmp_path / "users.toml"
    tokens = make_users(users)
    topics = ["uploads", "decisions", "review_requests", "review_verdicts", "dead_letter", "shadow", "banks"]
    topics += ["appeals", "appeal_outcomes", "statements", "s3_notifications"]
    worker_port, port, metrics_port, archive_port = free_ports(4)
    settings = stack_settings.model_copy(
        update={f"topic_{t}": f"er-{tag}.{t}" for t in topics}
        | {
            "consumer_group": f"er-{tag}-worker",
            "archive_group": f"er-{tag}-archive",
            "archive_bucket": f"er-{tag}",
            "worker_web_port": worker_port,
            "archive_web_port": archive_port,
            "policies_dir": policies,
            "dashboard_users_file": users,
            "dashboard_port": port,
            "dashboard_metrics_port": metrics_port,
            "trace_exporter": "none",
        }
    )
    await ensure_topics(settings)
    await publish(settings, [put_bank(Bank(name=bank, action=BankAction.BLOCK, changed_by="test"))])
    ObjectStore(settings).ensure_bucket(settings.uploads_bucket)
    worker = spawn_worker(settings, tmp_path / "worker.log")
    try:
        start_service(settings, "dashboard", timeout=90)
        start_service(settings, "archive", timeout=90)
        yield Running(settings, queue, f"appeals-{tag}", bank, tokens, tmp_path / "worker.log")
    finally:
        stop_stack(settings, only=["dashboard", "archive"])
        stop_worker(worker)


async def upload(settings: Settings, photo: bytes, subject: str) -> tuple[str, str]:
    async with UploadClient(settings) as client:
        event = await client.upload_image(photo, TENANT, subject=subject)
    return event.event_id, event.key


async def review(http: httpx.AsyncClient, queue: str, verdicts: dict[str, dict[str, object]]) -> None:
    """Claim the jobs of ``queue`` until each named one got its verdict."""
    waiting = dict(verdicts)
    for _ in range(240):
        claimed = await http.post(f"/api/queues/{queue}/claim")
        if claimed.status_code == 204:
            await asyncio.sleep(0.25)
            continue
        job_id = claimed.json()["job"]["job_id"]
        approve = {"verdict": "approve", "labels": []}  # a job this test does not name: let it go
        given = await http.post(f"/api/jobs/{job_id}/verdict", json=waiting.pop(job_id, approve))
        assert given.status_code == 200, given.text
        if not waiting:
            return
    raise AssertionError(f"never claimed {sorted(waiting)}")


def archived(settings: Settings, table: str, event_ids: set[str]) -> int:
    from pyiceberg.expressions import In

    stored = lake.find_table(settings, TABLES[table])
    return 0 if stored is None else len(stored.scan(row_filter=In(term="event_id", literals=event_ids)).to_arrow())


def redis_mentions(settings: Settings, event_ids: set[str]) -> dict[str, str]:
    """Every Redis key whose name or value names one of ``event_ids``: key -> what it holds."""
    store = redis.Redis.from_url(settings.redis_url)
    found = {}
    for raw in store.scan_iter(count=1000):
        text = raw.decode() + " " + " ".join(v.decode(errors="replace") for v in held_in(store, raw))
        if any(e in text for e in event_ids):
            found[raw.decode()] = text[:300]
    return found


def held_in(store: "redis.Redis", key: bytes) -> list[bytes]:
    """What a key holds, whatever its type."""
    kind = store.type(key).decode()  # type: ignore[union-attr]
    if kind == "string":
        return [store.get(key) or b""]  # type: ignore[list-item]
    if kind == "hash":
        return [*store.hkeys(key), *store.hvals(key)]  # type: ignore[misc, arg-type]
    if kind == "zset":
        return list(store.zrange(key, 0, -1))  # type: ignore[arg-type]
    if kind == "set":
        return list(store.smembers(key))  # type: ignore[arg-type]
    if kind == "list":
        return list(store.lrange(key, 0, -1))  # type: ignore[arg-type]
    if kind == "stream":
        return [v for _, fields in store.xrange(key) for v in fields.values()]  # type: ignore[union-attr]
    return []


def maps_of(settings: Settings, event_id: str) -> list[str]:
    return sorted(ObjectStore(settings).keys(settings.archive_bucket, f"{PREFIX}{event_id}/"))


async def kept_maps(browser: httpx.AsyncClient, settings: Settings, ours: str, other: str) -> dict[str, list[str]]:
    """Occlusion maps of ``ours`` as a reviewer's heat map toggle makes them (the dashboard keeps
    them), and as another model version's would be kept beside them; a copy of the same maps
    under ``other``'s id, another person's upload, which the erasure must leave. The keys of each."""
    shown = await browser.get(f"/jobs/{ours}/saliency")
    assert shown.status_code == 200 and shown.json()["maps"], shown.text
    (made,) = maps_of(settings, ours)
    saliency = Saliency.model_validate_json(ObjectStore(settings).get(settings.archive_bucket, made, 1_000_000))
    older = saliency.model.model_copy(update={"version": f"{saliency.model.version}-before"})
    store = SaliencyStore(ObjectStore(settings), settings.archive_bucket)
    await store.put(ours, saliency.model_copy(update={"model": older}))
    await store.put(other, saliency)
    kept = {ours: maps_of(settings, ours), other: maps_of(settings, other)}
    assert len(kept[ours]) == 2 and len(kept[other]) == 1, kept
    return kept


async def tombstoned(settings: Settings, key: str) -> bool:
    """Whether the last record under ``key`` on the banks topic is a tombstone."""
    last: bytes | None = b"none seen"
    async with kafka_consumer(settings, settings.topic_banks) as consumer:
        while batches := await consumer.getmany(timeout_ms=2000):
            for records in batches.values():
                last = next((r.value for r in reversed(records) if r.key == key.encode()), last)
    return last is None


async def test_a_subjects_uploads_leave_every_place_once_their_appeal_is_decided(running: Running) -> None:
    settings, tag = running.settings, new_id()[:6]
    subject, other = f"user-{tag}", f"other-{tag}"
    photo_a, photo_b, photo_c = (data for _, data in images.varied_images(3, seed=41))
    (e1, key1), (e2, key2) = await upload(settings, photo_a, subject), await upload(settings, photo_b, subject)
    e3, key3 = await upload(settings, photo_c, other)
    await first_records(settings, settings.topic_decisions, ModerationDecision, [e1, e2, e3])
    store = redis.Redis.from_url(settings.redis_url)
    objects = ObjectStore(settings)
    # The same bytes again, by someone else: the worker reuses the first upload's scores.
    metrics = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
    hits = total(scrape(metrics), "modstream_score_cache_hits_total")
    (e4, _) = await upload(settings, photo_a, f"third-{tag}")
    await first_records(settings, settings.topic_decisions, ModerationDecision, [e4])
    assert total(scrape(metrics), "modstream_score_cache_hits_total") == hits + 1

    async with running.api("rita") as rita, running.api("ada") as ada:
        # A reviewer removes both (the first into a bank), approves the other people's.
        remove: dict[str, object] = {"verdict": "remove", "labels": ["sexual.any"]}
        approve: dict[str, object] = {"verdict": "approve", "labels": []}
        await review(
            rita, running.queue, {e1: remove | {"add_to_bank": running.bank}, e2: remove, e3: approve, e4: approve}
        )
        for _ in range(120):  # the dashboard's feed has both restrictions on record
            if store.exists(RESTRICTION + e1) and store.exists(RESTRICTION + e2):
                break
            await asyncio.sleep(0.25)
        appeal = {"event_id": e2, "tenant": TENANT, "appellant": "uploader", "appellant_id": subject, "reason": "art"}
        lodged = await ada.post("/api/appeals", json=appeal)
        assert lodged.status_code == 201 and lodged.json()["outcome"] == "queued", lodged.text

        for topic in (settings.topic_decisions, settings.topic_review_verdicts):
            await wait_until_committed_to_end(settings, settings.archive_group, topic, timeout=120)
        # Positive signals: everything is where the erasure must find it.
        ours = {e1, e2}
        assert objects.versions(settings.uploads_bucket, key1) and objects.versions(settings.uploads_bucket, key2)
        assert archived(settings, "decisions", ours) == 4 and archived(settings, "verdicts", ours) == 2
        assert ours <= ids_in_files(settings, "decisions") and ours <= ids_in_files(settings, "verdicts")
        mentions = redis_mentions(settings, ours)
        assert {f"review:job:{e1}", f"review:job:{e2}", f"review:job:{e2}:appeal", RESTRICTION + e1} <= set(mentions)
        banks = await read_banks(settings)
        assert [e.source_event_id for e in banks.entries.values() if e.bank == running.bank] == [e1]
        assert (await ada.get(f"/api/jobs/{e1}")).status_code == 200
        # A map is made on demand (2-3 s alone; far longer while the other test worker loads Triton).
        async with httpx.AsyncClient(base_url=str(rita.base_url), timeout=120) as browser:
            assert (await try_log_in(browser, "ada", "ada-password")).status_code == 303
            assert (await browser.get(f"/jobs/{e1}/image")).status_code == 200
            kept = await kept_maps(browser, settings, e1, e3)

            # An appeal in progress: refused, naming it, and nothing is removed.
            refused = modstream(settings, "erase", "--subject", subject)
            assert refused.returncode == 1 and f"upload {e2} has an appeal in progress" in refused.stderr
            assert "Nothing was removed" in refused.stderr
            assert objects.versions(settings.uploads_bucket, key1) and store.exists(RESTRICTION + e1)
            assert (await rita.post("/api/erasures", json={"subject": subject})).status_code == 403

            # Another person upholds the appeal; then the erasure goes through.
            await review(ada, running.appeals, {f"{e2}:appeal": {"verdict": "remove", "labels": ["sexual.any"]}})
            for _ in range(40):
                if not [m for m in held_in(store, DUE.encode()) if e2.encode() in m]:
                    break
                await asyncio.sleep(0.25)
            for topic in (settings.topic_decisions, settings.topic_review_verdicts):
                await wait_until_committed_to_end(settings, settings.archive_group, topic, timeout=120)
            assert archived(settings, "verdicts", {e2}) == 2  # the appeal's verdict too
            logged = log_size(running.worker_log)
            erased = await ada.post("/api/erasures", json={"subject": subject})
            assert erased.status_code == 201, erased.text
            receipt = erased.json()

            # Nothing of them is left anywhere.
            assert objects.versions(settings.uploads_bucket, key1) == []
            assert objects.versions(settings.uploads_bucket, key2) == []
            assert maps_of(settings, e1) == [] and maps_of(settings, e3) == kept[e3]
            for table in ("decisions", "verdicts", "shadow"):
                assert archived(settings, table, ours) == 0
            for table in ("decisions", "verdicts"):
                assert not ours & ids_in_files(settings, table)
            left = redis_mentions(settings, ours)
            assert store.get(f"modstream:decided:{e1}") == b"erased"
            # Kept on purpose (the receipt says why): the audit log and the marks against replays.
            assert set(left) == {STREAM, f"modstream:decided:{e1}", f"modstream:decided:{e2}"}, left
            assert await tombstoned(settings, entry_key(running.bank, f"review-{e1}"))
            banks = await read_banks(settings)
            assert not [e for e in banks.entries.values() if e.source_event_id in ours]
            assert (await ada.get(f"/api/jobs/{e1}")).status_code == 404
            assert (await browser.get(f"/jobs/{e1}/image")).status_code == 404

        # The worker dropped the image's cached scores: the same bytes are scored afresh.
        await log_line(
            running.worker_log, lambda line: line.get("msg") == "erased images dropped from the score cache", logged
        )
        (e5, _) = await upload(settings, photo_a, f"third-{tag}")
        fresh = (await first_records(settings, settings.topic_decisions, ModerationDecision, [e5]))[e5]
        assert fresh.bank_match is None and fresh.model is not None  # its bank entry went too: scored
        assert total(scrape(metrics), "modstream_score_cache_hits_total") == hits + 1

        # The other person's upload is untouched, and so is the third's copy of the bytes.
        assert objects.versions(settings.uploads_bucket, key3)
        assert archived(settings, "decisions", {e3}) == 2 and archived(settings, "decisions", {e4}) == 2

        # The receipt: every place that held something, what was kept, stored and shown again.
        assert receipt["event_ids"] == sorted(ours) and receipt["requested_by"] == "ada"
        places = {p["name"]: p for p in receipt["places"]}
        assert places["image versions (object store)"]["removed"] == 2
        assert places["occlusion maps (archive bucket)"]["removed"] == len(kept[e1]) == 2
        assert places["archive: decisions"]["removed"] == 4 and places["archive: verdicts"]["removed"] == 3
        assert places["review jobs"]["removed"] == 3  # two reviews and the appeal
        assert places["appeal records"]["removed"] >= 2 and places["bank entries taken from them"]["removed"] == 1
        assert places["decided marks"]["removed"] == 2 and places["worker score caches"]["removed"] == 2
        assert any("statements of reasons" in k["what"] for k in receipt["kept"])
        assert (await ada.get(f"/api/erasures/{receipt['receipt_id']}")).json() == receipt
    shown = modstream(settings, "erase", "--receipt", receipt["receipt_id"])
    assert shown.returncode == 0 and f"asked by ada for subject:{subject}" in shown.stdout, shown.stderr
    bad = modstream(settings, "erase", "--event", "not an id")
    assert bad.returncode == 2 and "'not an id' is not an event id" in bad.stderr
    none = modstream(settings, "erase")
    assert none.returncode == 2 and "name what to erase" in none.stderr
