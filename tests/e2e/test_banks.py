"""Hash banks through a real worker: bank changes on the topic reach it live, a match decides
before the classifier by the bank's action, and byte-identical re-uploads reuse scores.

Every name here is private (topics, group, worker), so the banks it fills never touch the
other tests' workers.
"""

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer
from modstream.bank.topic import read_banks
from modstream.core.events import BankEntry, ModerationDecision, Outcome, ReviewRequest, entry_key, new_id
from modstream.core.ports import free_port
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.ingest.sdk import UploadClient
from PIL import Image

from tests import images
from tests.commands import modstream
from tests.conftest import policies_reviewing
from tests.records import RecordLog, decide_upload, decision_log, records_of
from tests.workers import spawn_worker, stop_worker

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
REVIEWED = "banks-reviewed"  # a tenant whose every upload goes to review by policy
REVIEW_QUEUE = "banks-policy"
# What the README promises: a bank change reaches every running worker within this.
PROPAGATION_LIMIT_SECONDS = 5.0


@pytest.fixture(scope="module")
def bank_settings(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    run = new_id()[:8]  # the stack may outlive a session: nothing of an earlier run's banks here
    names = {
        f"topic_{t}": f"banks-{run}.{t}"
        for t in ("uploads", "decisions", "review_requests", "dead_letter", "review_verdicts", "shadow", "banks")
    }
    policies = policies_reviewing(tmp_path_factory.mktemp("policies"), {REVIEWED: REVIEW_QUEUE}, "banks-1")
    return stack_settings.model_copy(
        update=names
        | {
            "topic_s3_notifications": f"banks-{run}.s3",
            "consumer_group": f"banks-{run}-worker",
            "worker_web_port": free_port(),
            "policies_dir": policies,
        }
    )


@pytest.fixture(scope="module")
def bank_worker(bank_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    ObjectStore(bank_settings).ensure_bucket(bank_settings.uploads_bucket)
    process = spawn_worker(bank_settings, tmp_path_factory.mktemp("banks") / "worker.log")
    try:
        yield bank_settings
    finally:
        stop_worker(process)


def photo(index: int) -> Image.Image:
    return images.photos()[index].convert("RGB")


def jpeg(image: Image.Image, quality: int = 90, scale: float = 1.0) -> bytes:
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)))
    return images.encode(image, "JPEG", quality=quality)


def cli(settings: Settings, *args: str) -> str:
    done = modstream(settings, "bank", *args)
    assert done.returncode == 0, f"modstream bank {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


async def decide(settings: Settings, data: bytes, tenant: str = "banks") -> ModerationDecision:
    return await decide_upload(settings, data, tenant)


async def until_decided(
    settings: Settings, data: bytes, wanted: Callable[[ModerationDecision], bool], limit: float
) -> tuple[float, ModerationDecision]:
    """Upload ``data`` again and again until a decision is ``wanted``; the seconds it took."""
    started = time.monotonic()
    while True:
        decision = await decide(settings, data)
        if wanted(decision):
            return time.monotonic() - started, decision
        assert time.monotonic() - started < limit, f"still not changed after {limit} s: {decision.reasons}"
        await asyncio.sleep(0.2)


def by_bank(decision: ModerationDecision) -> bool:
    return decision.reasons == ["hash_match"]


async def test_a_banked_image_is_decided_by_its_bank_within_seconds(bank_worker: Settings, tmp_path: Path) -> None:
    settings = bank_worker
    original = jpeg(photo(0))
    # Uploaded before the bank knows the picture, in other bytes: allowed by the classifier.
    earlier = await decide(settings, jpeg(photo(0), quality=75))
    assert earlier.hashes is not None and earlier.hashes.pdq is not None and earlier.bank_match is None
    assert earlier.model is not None and earlier.decision is not Outcome.BLOCK

    cli(settings, "create", "known-bad", "--action", "block", "--by", "ops")
    path = tmp_path / "bad.jpg"
    path.write_bytes(original)
    said = cli(settings, "add", "known-bad", str(path), "--note", "from the test", "--retro-days", "1", "--by", "ops")
    added = time.monotonic()
    # The earlier upload is decided again, by the PDQ hash its decision carries.
    assert "1 newly decided" in said, said
    both = await records_of(settings, settings.topic_decisions, ModerationDecision, earlier.event_id, 2, timeout=30)
    assert len(both) == 2, both
    again = max(both, key=lambda d: d.occurred_at)
    assert again.reasons == ["hash_match", "retroactive"] and again.decision is Outcome.BLOCK
    assert again.source == "retroactive"
    assert again.bank_match is not None and again.bank_match.signal == "pdq" and again.hashes == earlier.hashes
    # A re-encoded, resized copy: other bytes, a near PDQ hash.
    copy = jpeg(photo(0), quality=60, scale=0.7)
    took, blocked = await until_decided(settings, copy, by_bank, 30)
    propagated = time.monotonic() - added
    match = blocked.bank_match
    assert blocked.decision is Outcome.BLOCK and match is not None
    assert (match.bank, match.signal, match.action) == ("known-bad", "pdq", "block")
    assert 0 < match.distance <= 31
    (entry,) = (await read_banks(settings)).entries_of("known-bad")
    assert match.entry_id == entry.entry_id and entry.added_by == "ops" and entry.note == "from the test"
    assert blocked.scores, "a PDQ match is known after scoring, so the scores are kept"
    print(f"\na new bank entry decided a near copy {propagated:.2f} s after `bank add` returned (d={match.distance})")
    assert propagated < PROPAGATION_LIMIT_SECONDS

    # The same bytes: an exact match, decided without Triton.
    exact = await decide(settings, original)
    assert exact.decision is Outcome.BLOCK and exact.bank_match is not None
    assert (exact.bank_match.signal, exact.bank_match.distance) == ("sha256", 0)
    assert exact.model is None and exact.scores == {}

    # Removed: the next copy goes back to the classifier.
    cli(settings, "remove", "known-bad", entry.entry_id)
    took, back = await until_decided(settings, copy, lambda d: not by_bank(d), 30)
    assert back.bank_match is None and back.model is not None
    print(f"removal took effect in {took:.2f} s")


async def test_an_allow_bank_skips_review_and_a_review_bank_sends_to_its_queue(
    bank_worker: Settings, tmp_path: Path
) -> None:
    settings = bank_worker
    good, doubtful, control = jpeg(photo(1)), jpeg(photo(2)), jpeg(photo(3))
    for name, data in (("good", good), ("doubtful", doubtful)):
        (tmp_path / f"{name}.jpg").write_bytes(data)
    cli(settings, "create", "known-good", "--action", "allow")
    cli(settings, "create", "check", "--action", "review", "--queue", "banked-check", "--distance", "20")
    cli(settings, "add", "known-good", str(tmp_path / "good.jpg"))
    cli(settings, "add", "check", str(tmp_path / "doubtful.jpg"))

    async with RecordLog(settings, settings.topic_review_requests, ReviewRequest) as requests:
        _, allowed = await until_decided(settings, jpeg(photo(1), quality=70), by_bank, 30)
        assert allowed.decision is Outcome.ALLOW and allowed.bank_match is not None
        assert allowed.bank_match.action == "allow" and allowed.review_queue is None
        reviewed = await decide(settings, jpeg(photo(2), quality=70))
        assert reviewed.decision is Outcome.REVIEW and reviewed.review_queue == "banked-check"
        assert reviewed.bank_match is not None and reviewed.bank_match.bank == "check"
        # The positive signal first: the bank's review request, then a policy review of the
        # same tenant; only then is the allowed image's absence from review worth anything.
        assert await requests.wait_for([reviewed.event_id], timeout=60) == 1
        request = requests.first(reviewed.event_id)
        assert request.queue == "banked-check" and request.bank_match == reviewed.bank_match
        assert request.hashes == reviewed.hashes
        policy = await decide(settings, control, tenant=REVIEWED)
        assert policy.review_queue == REVIEW_QUEUE
        assert await requests.wait_for([policy.event_id], timeout=60) == 1
        allowed_reviewed = await decide(settings, jpeg(photo(1), quality=75), tenant=REVIEWED)
        assert allowed_reviewed.decision is Outcome.ALLOW and allowed_reviewed.bank_match is not None
        assert await requests.settled([allowed_reviewed.event_id], quiet=2) == 0, "an allow-bank match went to review"


async def test_an_entry_written_by_another_kafka_client_is_applied(bank_worker: Settings) -> None:
    """The topic is the interface: librdkafka (confluent-kafka) writes the entry, not our SDK."""
    settings = bank_worker
    ensure_bank(settings, "outside")
    data = jpeg(photo(4), quality=85)
    first = await decide(settings, data)
    assert first.hashes is not None and first.hashes.pdq is not None and first.bank_match is None
    entry = BankEntry(bank="outside", pdq=first.hashes.pdq.hex, added_by="librdkafka")
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(settings.topic_banks, key=entry_key("outside", entry.entry_id), value=entry.to_bytes())
    assert producer.flush(30) == 0
    _, blocked = await until_decided(settings, jpeg(photo(4), quality=80), by_bank, 30)
    assert blocked.bank_match is not None and blocked.bank_match.entry_id == entry.entry_id


async def test_byte_identical_reuploads_reuse_their_scores(bank_worker: Settings) -> None:
    settings = bank_worker
    url = f"http://127.0.0.1:{settings.worker_web_port}/metrics"

    def hits() -> float:
        text = httpx.get(url, timeout=10).text
        return sum(
            float(line.split()[-1]) for line in text.splitlines() if line.startswith("modstream_score_cache_hits")
        )

    data = jpeg(photo(5), quality=88)
    first = await decide(settings, data)
    before = hits()
    second = await decide(settings, data)
    assert hits() == before + 1
    assert second.scores == first.scores and second.model == first.model and second.hashes == first.hashes
    assert second.decision_id != first.decision_id


def bank_matches(port: int, bank: str) -> float:
    """How many decisions the worker behind ``port`` made by ``bank``, from its metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if line.startswith("modstream_bank_matches") and bank in line]
    return sum(float(line.split()[-1]) for line in lines)


def ensure_bank(settings: Settings, name: str) -> None:
    if name not in {row["name"] for row in json.loads(cli(settings, "list", "--json"))}:
        cli(settings, "create", name, "--action", "block")


def test_bad_bank_commands_are_refused_with_the_reason(bank_worker: Settings, tmp_path: Path) -> None:
    settings = bank_worker
    ensure_bank(settings, "known-bad")
    for args, said in (
        (("create", "r", "--action", "review"), "review bank names its review_queue"),
        (("add", "no-such-bank", "--md5", "0" * 32), "no bank named 'no-such-bank'"),
        (("add", "known-bad", "--pdq", "zz"), "pdq"),
        (("remove", "known-bad", "no-such-entry"), "no entry no-such-entry"),
        (("add", "known-bad"), "nothing to add"),
    ):
        done = modstream(settings, "bank", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert said in done.stdout + done.stderr, (args, done.stderr)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(images.corrupt_jpeg())
    done = modstream(settings, "bank", "add", "known-bad", str(corrupt))
    assert done.returncode == 2 and "corrupt_image" in done.stderr, done.stderr


async def test_a_new_entry_reaches_every_running_worker(bank_worker: Settings, tmp_path: Path) -> None:
    """Two workers share the uploads; an entry added while both run decides on both."""
    settings = bank_worker
    second = settings.model_copy(update={"worker_web_port": free_port()})
    process = spawn_worker(second, tmp_path / "second-worker.log")
    try:
        ensure_bank(settings, "everywhere")
        path = tmp_path / "everywhere.jpg"
        path.write_bytes(jpeg(photo(6)))
        cli(settings, "add", "everywhere", str(path), "--retro-days", "0")
        added = time.monotonic()
        copies = [jpeg(photo(6), quality=q) for q in range(60, 92, 2)]  # 16 uploads over the partitions
        async with UploadClient(settings) as client, decision_log(settings) as decisions:
            events = [await client.upload_image(data, "banks") for data in copies]
            ids = [e.event_id for e in events]
            assert await decisions.wait_for(ids, timeout=120) == len(ids)
            matched = [decisions.first(e) for e in ids]
        assert all(by_bank(d) for d in matched), [d.reasons for d in matched]
        took = time.monotonic() - added
        print(f"\n16 near copies on two workers, all decided by the entry within {took:.2f} s of adding it")
        for worker in (settings, second):
            assert bank_matches(worker.worker_web_port, "everywhere") > 0, (
                f"the worker on {worker.worker_web_port} decided none of them by the bank"
            )
    finally:
        stop_worker(process)
