"""Erasing uploads: every place that holds something of them, in turn, then a receipt.

``Erasure`` owns what it reaches (Redis, the object store, the archive, the banks topic) for
as long as its caller keeps it: the CLI for one request, the dashboard for its life. A
request names uploads by event id, or a subject (the uploader's pseudonymous id, found in the
archived decisions). It is refused whole, before anything is removed, while one of the
uploads has an appeal in progress: the appeal's decision needs the image and its record.

The order matters: the image goes first, so that no reviewer or worker reads it again while
the rest goes; the receipt is stored last, in the archive bucket, and holds only ids and counts.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime

import redis.asyncio as aioredis

from modstream.archive.erase import Held, erase_events, held
from modstream.bank import ops
from modstream.bank.topic import publish, read_banks
from modstream.core import metrics
from modstream.core.dedupe import DecidedEvents
from modstream.core.erased import ErasedImages
from modstream.core.events import check_ids
from modstream.core.settings import Settings
from modstream.core.storage import ObjectMissing, ObjectStore
from modstream.erasure.receipt import ErasureReceipt, Kept, Place
from modstream.explain.store import SaliencyStore
from modstream.review.appeals import AppealBook
from modstream.review.exposure import ExposureBook
from modstream.review.gold import GoldBook
from modstream.review.jobs import ReviewJob
from modstream.review.queue import ReviewQueues

log = logging.getLogger("modstream.erasure")
RECEIPTS = "erasures/"  # in the archive bucket: <receipt id>.json


class ErasureRefused(Exception):
    """Nothing was removed, and why."""


class ReceiptMissing(Exception):
    pass


def kept(settings: Settings) -> list[Kept]:
    """What an erasure leaves, on purpose or because the medium cannot forget sooner."""
    days = settings.dedupe_ttl_seconds / 86400
    return [
        Kept(
            what="statements of reasons (moderation.statements, the Transparency Database)",
            why="they hold no personal data (checked before sending) and DSA Art. 17 and 24(5) require them",
        ),
        Kept(
            what="the review audit log",
            why="who did what to which job, for accountability; it names job ids, never the image",
        ),
        Kept(
            what="the event id, marked 'erased' against replays",
            why=f"so that a replay of the upload event is skipped, not decided again; gone after {days:g} days",
        ),
        Kept(
            what="records on the event topics (uploads, decisions, review, shadow, appeals)",
            why="a Kafka log cannot be edited: they age out with each topic's retention (docs/erasure.md)",
        ),
        Kept(
            what="the replaced bank entries on moderation.banks",
            why="superseded by tombstones at once; Kafka's compaction then drops them (Tansu never compacts)",
        ),
        Kept(
            what="learned heads trained while the upload was archived",
            why="their weights are a fit over many examples, not a copy of one; retraining leaves it out",
        ),
    ]


class Erasure:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = aioredis.Redis.from_url(settings.redis_url)
        self.queues = ReviewQueues.of(self.redis, settings)
        self.appeals = AppealBook(self.redis)
        self.gold = GoldBook(self.redis)
        self.exposure = ExposureBook(self.redis)
        self.decided = DecidedEvents(settings)
        self.erased_images = ErasedImages(self.redis, settings.score_cache_ttl_seconds)
        self.objects = ObjectStore(settings)
        self.maps = SaliencyStore(self.objects, settings.archive_bucket)

    async def close(self) -> None:
        await self.decided.close()
        await self.redis.aclose()

    async def erase(
        self,
        *,
        event_ids: Collection[str] = (),
        subject: str | None = None,
        requested_by: str,
        on_stage: Callable[[str], None] = lambda message: None,
    ) -> ErasureReceipt:
        """Erase the uploads ``event_ids`` and those of ``subject``; the stored receipt.
        Raises NotAnId for an id no upload can have, and ErasureRefused (nothing removed) while
        one has an appeal in progress."""
        check_ids(event_ids, subject)
        started, clock = datetime.now(UTC), time.perf_counter()
        on_stage("finding the uploads in the archive and the review queues")
        archived = await asyncio.to_thread(held, self.settings, event_ids=event_ids, subject=subject)
        uploads = sorted({*event_ids, *(h.event_id for h in archived)})
        jobs = [job for event_id in uploads for job in await self.queues.jobs_of(event_id)]
        await self._refuse_while_appealed(uploads)
        searched = time.perf_counter() - clock

        places: list[Place] = []

        async def step(stage: str, work: Callable[[], Awaitable[list[Place]]]) -> None:
            on_stage(stage)
            began = time.perf_counter()
            done = await work()
            share = (time.perf_counter() - began) / max(len(done), 1)
            places.extend(place.model_copy(update={"seconds": round(share, 3)}) for place in done)

        await step("removing the images and every version of them", lambda: self._images(archived, jobs))
        await step("removing the occlusion maps made of them", lambda: self._maps(uploads))
        await step(
            "deleting the archive's rows, then every file that held them", lambda: self._archive(uploads, archived)
        )
        await step("removing review jobs, appeal records and gold items", lambda: self._review(uploads, archived, jobs))
        await step("withdrawing bank entries taken from them", lambda: self._bank_entries(uploads))
        await step("telling the workers, marking the events erased", lambda: self._workers(uploads, archived, jobs))

        receipt = ErasureReceipt(
            requested_by=requested_by,
            asked=[*event_ids, *([f"subject:{subject}"] if subject is not None else [])],
            event_ids=uploads,
            started_at=started,
            finished_at=datetime.now(UTC),
            search_seconds=round(searched, 3),
            places=places,
            kept=kept(self.settings),
        )
        await self._store(receipt)
        for place in places:
            metrics.erased_items.add(place.removed, {"place": place.name, "cause": "erasure"})
        metrics.erasures.add(1, {"outcome": "done"})
        log.info("erased", extra={"receipt": receipt.receipt_id, "uploads": len(uploads), "removed": receipt.removed})
        return receipt

    async def receipt(self, receipt_id: str) -> ErasureReceipt:
        if not receipt_id.isalnum():  # ids are hex: nothing else names a receipt's object
            raise ReceiptMissing(f"no erasure receipt {receipt_id!r}")
        try:
            data = await asyncio.to_thread(
                self.objects.get, self.settings.archive_bucket, f"{RECEIPTS}{receipt_id}.json", 10_000_000
            )
        except ObjectMissing as exc:
            raise ReceiptMissing(f"no erasure receipt {receipt_id}") from exc
        return ErasureReceipt.model_validate_json(data)

    async def _refuse_while_appealed(self, uploads: list[str]) -> None:
        for event_id in uploads:
            appeal = await self.appeals.open_appeal(event_id)
            if appeal is not None:
                job_id, due = appeal
                metrics.erasures.add(1, {"outcome": "refused"})
                raise ErasureRefused(
                    f"upload {event_id} has an appeal in progress (job {job_id}, due {due:%Y-%m-%d %H:%M} UTC): "
                    "its decision needs the image and its record; erase it once the appeal is decided. "
                    "Nothing was removed."
                )

    async def _images(self, archived: list[Held], jobs: list[ReviewJob]) -> list[Place]:
        """The uploaded image, where the archive or a job says it is (not yet archived: a job)."""
        images = {(h.bucket, h.key) for h in archived} | {(j.bucket, j.key) for j in jobs}
        versions = sum([await asyncio.to_thread(self.objects.erase, bucket, key) for bucket, key in sorted(images)])
        return [Place(name="image versions (object store)", found=versions, removed=versions)]

    async def _maps(self, uploads: list[str]) -> list[Place]:
        """Occlusion maps, made on the review page or for a block: a coarse picture of where the
        image's content is, kept under the event's id in the archive bucket."""
        versions = await self.maps.erase(uploads)
        return [Place(name="occlusion maps (archive bucket)", found=versions, removed=versions)]

    async def _archive(self, uploads: list[str], archived: list[Held]) -> list[Place]:
        return [
            Place(
                name=f"archive: {done.table}",
                found=done.rows,
                removed=done.rows,
                note=f"{done.files_deleted} files deleted, {done.snapshots_expired} snapshots expired",
                seconds=done.seconds,
            )
            for done in await asyncio.to_thread(erase_events, self.settings, uploads, archived)
        ]

    async def _review(self, uploads: list[str], archived: list[Held], jobs: list[ReviewJob]) -> list[Place]:
        removed = await self.queues.erase([job.job_id for job in jobs])
        decision_ids = {h.decision_id for h in archived if h.decision_id} | {job.decision_id for job in jobs}
        records = sum([await self.appeals.forget(e, decision_ids) for e in uploads])
        gold = await self.gold.erase(uploads)
        seen = await self.exposure.forget([job.job_id for job in jobs])
        return [
            Place(name="review jobs", found=len(jobs), removed=removed),
            Place(name="appeal records", found=records, removed=records),
            Place(name="gold items", found=gold, removed=gold),
            Place(name="reviewers' lists of jobs seen", found=seen, removed=seen, note="exposure counts stay"),
        ]

    async def _bank_entries(self, uploads: list[str]) -> list[Place]:
        changes = ops.erase_taken_from(await read_banks(self.settings), uploads)
        if changes:
            await publish(self.settings, changes)
        return [Place(name="bank entries taken from them", found=len(changes), removed=len(changes), note="tombstones")]

    async def _workers(self, uploads: list[str], archived: list[Held], jobs: list[ReviewJob]) -> list[Place]:
        digests = {h.sha256 for h in archived if h.sha256} | {j.hashes.sha256 for j in jobs if j.hashes}
        notices = await self.erased_images.add(digests)
        marked = sum([await self.decided.mark_erased(e) for e in uploads])
        return [
            Place(
                name="worker score caches", found=None, removed=notices, note="dropped at each worker's next refresh"
            ),
            Place(name="decided marks", found=marked, removed=marked, note="replaced by 'erased'"),
        ]

    async def _store(self, receipt: ErasureReceipt) -> None:
        bucket = self.settings.archive_bucket
        await asyncio.to_thread(self.objects.ensure_bucket, bucket)
        key = f"{RECEIPTS}{receipt.receipt_id}.json"
        await self.objects.aput(bucket, key, receipt.model_dump_json(indent=2).encode(), "application/json")
