"""Each edge adapter against its real server (from the session's local stack)."""

import asyncio
import base64
import io
import re

import numpy as np
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from modstream.bench.triton_metrics import mean_batch_sizes, read
from modstream.core.dedupe import Claim, DecidedEvents
from modstream.core.events import ErrorReason
from modstream.core.inference import ImageRejected, InferenceUnavailable, TritonScorer
from modstream.core.kafka import kafka_consumer, kafka_producer
from modstream.core.ports import free_port
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.storage import ObjectMissing, ObjectStore, ObjectTooLarge, StorageDenied, StorageUnavailable
from modstream.core.topics import ensure_topics, topic_names
from modstream.core.tracing import extract_context, inject_headers
from modstream.models.taxonomy import read_taxonomy
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from PIL import Image, ImageOps
from pydantic import SecretStr

from tests import images
from tests.proxy import CountingProxy

pytestmark = pytest.mark.integration
LABELS = list(read_taxonomy(PROJECT_ROOT / "model_repository").labels)  # the full profile makes every label


def jpeg(width: int = 320, height: int = 240) -> bytes:
    return images.encode(Image.effect_noise((width, height), 40).convert("RGB"), "JPEG")


# --- object storage -------------------------------------------------------------------


def test_storage_round_trip_and_named_failures(stack_settings: Settings) -> None:
    store = ObjectStore(stack_settings)
    store.ensure_bucket("adapter-test")
    store.ensure_bucket("adapter-test")  # twice is fine
    store.put("adapter-test", "a/b.jpg", b"\xff\xd8\xffdata", "image/jpeg")
    assert store.get("adapter-test", "a/b.jpg", max_bytes=100) == b"\xff\xd8\xffdata"
    with pytest.raises(ObjectMissing, match="NoSuchKey"):
        store.get("adapter-test", "a/none.jpg", max_bytes=100)
    with pytest.raises(ObjectMissing):
        store.get("no-such-bucket", "a/b.jpg", max_bytes=100)
    with pytest.raises(ObjectTooLarge, match="7 bytes, over the limit of 6"):
        store.get("adapter-test", "a/b.jpg", max_bytes=6)


async def test_a_60_mb_file_is_refused_without_being_read(stack_settings: Settings) -> None:
    size, limit = 60 * 2**20, Settings().max_image_bytes
    store = ObjectStore(stack_settings)
    store.ensure_bucket("adapter-test")
    store.put("adapter-test", "big/60mb.jpg", b"\xff\xd8\xff" + bytes(size - 3), "image/jpeg")
    store.put("adapter-test", "big/small.jpg", b"\xff\xd8\xffdata", "image/jpeg")
    # What nanio sends back is counted on the wire, between it and the client.
    async with CountingProxy(stack_settings.s3_endpoint) as proxy:
        through_proxy = ObjectStore(stack_settings.model_copy(update={"s3_endpoint": proxy.endpoint}))
        assert await through_proxy.aget("adapter-test", "big/small.jpg", max_bytes=100) == b"\xff\xd8\xffdata"
        small = proxy.bytes_to_clients  # the proxy counts: a small answer is a few hundred bytes
        assert small > 0
        with pytest.raises(ObjectTooLarge, match=f"{size} bytes, over the limit of {limit}"):
            await through_proxy.aget("adapter-test", "big/60mb.jpg", max_bytes=limit)
        await proxy.connections_closed()  # the refusing client hung up: nothing more can cross
    sent = proxy.bytes_to_clients - small
    print(f"\n60 MB object refused: {sent:,} bytes crossed the wire ({small:,} for a 7-byte object)")
    # Measured: the headers alone (a few hundred bytes); socket buffers could let some body
    # through before the client hangs up, but reading it, even up to the 20 MB limit, cannot pass.
    assert sent < 2 * 2**20


def test_storage_wrong_secret_is_not_a_missing_object(stack_settings: Settings) -> None:
    wrong = stack_settings.model_copy(update={"s3_secret_key": SecretStr("not-the-secret")})
    with pytest.raises(StorageDenied):  # a kind of StorageUnavailable: retried while running
        ObjectStore(wrong).get("adapter-test", "a/b.jpg", max_bytes=100)
    with pytest.raises(StorageDenied):
        ObjectStore(wrong).check_bucket(stack_settings.uploads_bucket)
    with pytest.raises(ObjectMissing, match="the bucket does not exist"):
        ObjectStore(stack_settings).check_bucket("no-such-bucket")


def test_storage_down_is_unavailable() -> None:
    down = Settings(s3_endpoint=f"127.0.0.1:{free_port()}")
    with pytest.raises(StorageUnavailable):
        ObjectStore(down, pool_size=1).get("uploads", "k", max_bytes=10)


# --- Kafka ----------------------------------------------------------------------------


async def test_topics_created_with_partitions_once(stack_settings: Settings) -> None:
    # Every topic under a name of its own (the session's may exist already), whatever topics there are.
    names = {
        f: f"adapter.{f}"
        for f, field in Settings.model_fields.items()
        if f.startswith("topic_") and field.annotation is str
    }
    settings = stack_settings.model_copy(update=names | {"topic_partitions": 3})
    assert sorted(await ensure_topics(settings)) == sorted(topic_names(settings))
    assert await ensure_topics(settings) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topic_names(settings))
    finally:
        await admin.close()
    # The banks topic has one partition whatever the setting: every change in one order.
    wanted = {n: 1 if n == settings.topic_banks else 3 for n in topic_names(settings)}
    assert {d["topic"]: len(d["partitions"]) for d in described} == wanted


async def test_trace_context_travels_in_kafka_headers(stack_settings: Settings) -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    topic = "adapter.headers"
    with tracer.start_as_current_span("producer") as span:
        headers = inject_headers()
        sent_trace = span.get_span_context().trace_id
    async with kafka_producer(stack_settings) as producer:
        await producer.send_and_wait(topic, b"payload", key=b"k", headers=headers)
    async with kafka_consumer(stack_settings, topic) as consumer:
        record = await asyncio.wait_for(consumer.getone(), 30)
    context = extract_context(record.headers)
    assert trace.get_current_span(context).get_span_context().trace_id == sent_trace
    assert record.value == b"payload"


# --- Redis ----------------------------------------------------------------------------


async def test_decided_events_remember_the_decision(stack_settings: Settings) -> None:
    decided = DecidedEvents(stack_settings, prefix="adapter-test:")
    try:
        first = await decided.try_claim("evt-1")
        assert first is not None and first.token is not None and first.decided_as is None
        await decided.mark("evt-1", "dec-1")
        assert await decided.try_claim("evt-1") == Claim(decided_as="dec-1")
        other = await decided.try_claim("evt-2")
        assert other is not None and other.decided_as is None
    finally:
        await decided.close()


async def test_redis_down_raises_connection_error() -> None:
    import redis.exceptions

    decided = DecidedEvents(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(redis.exceptions.ConnectionError):
        await decided.try_claim("evt")
    await decided.close()


# --- Triton ---------------------------------------------------------------------------


@pytest.fixture
async def scorer(stack_settings: Settings) -> TritonScorer:
    return TritonScorer(stack_settings.triton_grpc, stack_settings.triton_model, timeout=60)


async def test_scores_for_every_label_with_the_version(scorer: TritonScorer) -> None:
    scores = await scorer.score(jpeg())
    assert list(scores.by_label) == LABELS
    assert scores.model.name == "moderation"
    components = {"efficientnet_lite0", "image_safety", "nsfwjs", "opennsfw", "heads", "ocr"}  # heads 1: none learned
    assert {k: v for k, v in scores.model.components.items() if k != "taxonomy"} == dict.fromkeys(components, "1")
    assert re.fullmatch(r"[0-9a-f]{12}", scores.model.components["taxonomy"])
    assert scores.embedding is not None and scores.embedding.model == "efficientnet_lite0:1"
    assert scores.embedding.dims == 1280 and len(base64.b64decode(scores.embedding.values_base64)) == 2 * 1280
    await scorer.close()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (images.html_named_jpg(), ErrorReason.NOT_AN_IMAGE),
        (images.svg_named_jpg(), ErrorReason.NOT_AN_IMAGE),
        (images.text_named_jpg(), ErrorReason.NOT_AN_IMAGE),
        (images.corrupt_jpeg(), ErrorReason.CORRUPT_IMAGE),
        (images.truncated_png(), ErrorReason.CORRUPT_IMAGE),
        (images.corrupt_webp(), ErrorReason.CORRUPT_IMAGE),
        (images.corrupt_gif(), ErrorReason.CORRUPT_IMAGE),
        (images.decompression_bomb(), ErrorReason.TOO_MANY_PIXELS),
        (images.encode(Image.new("RGB", (8, 8)), "TGA"), ErrorReason.UNSUPPORTED_FORMAT),
        (b"", ErrorReason.EMPTY_FILE),
    ],
)
async def test_bad_images_are_rejected_with_a_reason(scorer: TritonScorer, data: bytes, reason: ErrorReason) -> None:
    with pytest.raises(ImageRejected) as caught:
        await scorer.score(data)
    assert caught.value.reason is reason
    assert caught.value.message


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (1, 1), "white"),
        Image.new("CMYK", (64, 48), (0, 128, 0, 0)),
        Image.fromarray((np.arange(64 * 48) % 65535).astype(np.uint16).reshape(48, 64)),
        Image.new("LA", (30, 30)),
    ],
    ids=["1x1", "cmyk-jpeg", "16-bit-png", "gray-alpha"],
)
async def test_unusual_but_valid_images_are_scored(scorer: TritonScorer, image: Image.Image) -> None:
    fmt = "JPEG" if image.mode == "CMYK" else "PNG"
    scores = await scorer.score(images.encode(image, fmt))
    assert list(scores.by_label) == LABELS


async def test_exif_rotation_is_applied_before_scoring(scorer: TritonScorer) -> None:
    # Photos small enough to be decoded at full scale, so the pixels Triton sees can be
    # rebuilt here exactly: the stored JPEG as a viewer shows it (turned) and as stored.
    effects = []
    for photo in (p for p in images.photos() if max(p.size) <= 448):
        as_shot = images.exif_rotated_jpeg(photo)
        stored = Image.open(io.BytesIO(as_shot))
        shown = (await scorer.score(images.encode(ImageOps.exif_transpose(stored), "PNG"))).by_label
        unturned = (await scorer.score(images.encode(stored.convert("RGB"), "PNG"))).by_label
        assert (await scorer.score(as_shot)).by_label == pytest.approx(shown, abs=1e-4)
        effects.append(max(abs(shown[k] - unturned[k]) for k in LABELS))
    assert max(effects) > 0.01  # turning matters for at least one photo, so the check above can fail


async def test_animated_gif_is_scored_by_its_first_frame(scorer: TritonScorer) -> None:
    frames = [Image.new("P", (40, 40), color) for color in (1, 200)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    animated = await scorer.score(out.getvalue())
    first = await scorer.score(images.encode(frames[0], "GIF"))
    assert animated.by_label == pytest.approx(first.by_label, abs=1e-5)


async def test_concurrent_requests_are_batched_and_a_bad_one_fails_alone(
    scorer: TritonScorer, stack_settings: Settings
) -> None:
    before = read(stack_settings.triton_metrics)
    good = [jpeg(200 + i, 150) for i in range(31)]
    results = await asyncio.gather(
        *(scorer.score(data) for data in [*good[:15], images.corrupt_jpeg(), *good[15:]]), return_exceptions=True
    )
    after = read(stack_settings.triton_metrics)
    assert isinstance(results[15], ImageRejected) and results[15].reason is ErrorReason.CORRUPT_IMAGE
    assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 15)
    sizes = mean_batch_sizes(before, after)
    assert all(sizes[component] > 1.5 for component in ("image_safety", "nsfwjs", "opennsfw", "efficientnet_lite0"))


async def test_triton_down_is_unavailable_not_a_rejection() -> None:
    down = TritonScorer(f"127.0.0.1:{free_port()}", "moderation", timeout=5)
    with pytest.raises(InferenceUnavailable):
        await down.score(jpeg())
    await down.close()


async def test_unknown_model_is_unavailable(stack_settings: Settings) -> None:
    missing = TritonScorer(stack_settings.triton_grpc, "no_such_model", timeout=5)
    with pytest.raises(InferenceUnavailable):
        await missing.score(jpeg())
    await missing.close()


async def test_a_png_with_a_bad_checksum_is_scored_and_the_model_stays_up(scorer: TritonScorer) -> None:
    scores = await scorer.score(images.png_with_bad_crc())
    assert list(scores.by_label) == LABELS
    after = await scorer.score(jpeg())  # the preprocess model still answers the next request
    assert list(after.by_label) == LABELS
