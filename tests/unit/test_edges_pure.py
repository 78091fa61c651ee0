"""Pure logic at the edges: error classification, metrics parsing, content sniffing, files."""

from pathlib import Path

import pytest
from modstream.bench.triton_metrics import mean_batch_sizes, parse
from modstream.core.events import ErrorReason
from modstream.core.inference import ImageRejected, InferenceUnavailable, classify_failure
from modstream.core.media import sniff_content_type
from modstream.core.settings import Settings
from modstream.ingest.files import image_files
from PIL import Image
from tritonclient.utils import InferenceServerException

from tests import images


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("in ensemble 'moderation', [modstream:corrupt_image] decoding failed", ErrorReason.CORRUPT_IMAGE),
        ("[modstream:too_many_pixels] 30000x30000 is over", ErrorReason.TOO_MANY_PIXELS),
        ("[modstream:something_new] a reason this worker does not know", ErrorReason.REJECTED_BY_MODEL),
    ],
)
def test_tagged_failures_are_final_rejections(message: str, expected: ErrorReason) -> None:
    failure = classify_failure(InferenceServerException(msg=message, status="StatusCode.INTERNAL"))
    assert isinstance(failure, ImageRejected)
    assert failure.reason is expected


@pytest.mark.parametrize(
    "message",
    ["failed to connect to all addresses", "Request for unknown model: 'moderation' is not found", "Deadline Exceeded"],
)
def test_untagged_failures_are_retried(message: str) -> None:
    assert isinstance(classify_failure(InferenceServerException(msg=message)), InferenceUnavailable)


METRICS = """
# HELP nv_inference_count Number of inferences performed
nv_inference_count{model="image_safety",version="1"} 100
nv_inference_count{model="image_safety",version="2"} 20
nv_inference_exec_count{model="image_safety",version="1"} 10
nv_inference_exec_count{model="image_safety",version="2"} 5
nv_inference_count{model="preprocess",version="1"} 120
nv_inference_exec_count{model="preprocess",version="1"} 120
nv_gpu_utilization{gpu_uuid="x"} 0.5
"""


def test_metrics_summed_over_versions() -> None:
    counts = parse(METRICS)
    assert counts[("nv_inference_count", "image_safety")] == 120
    assert counts[("nv_inference_exec_count", "image_safety")] == 15


def test_mean_batch_size_between_two_readings() -> None:
    before = parse(METRICS)
    after = dict(before)
    after[("nv_inference_count", "image_safety")] += 64
    after[("nv_inference_exec_count", "image_safety")] += 8
    assert mean_batch_sizes(before, after) == {"image_safety": 8.0}


@pytest.mark.parametrize(
    ("head", "content_type"),
    [
        (b"\xff\xd8\xff\xe0rest", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\nrest", "image/png"),
        (b"GIF89a...", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"BM\x8a\x00", "image/bmp"),
        (b"II*\x00\x08\x00", "image/tiff"),
        (b"MM\x00*\x00\x00", "image/tiff"),
        (b"\x00\x00\x01\x00\x01\x00", "image/vnd.microsoft.icon"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "image/avif"),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00", "image/heif"),
        (b"\x00\x00\x00\x1cftypisom\x00\x00\x00\x00", "application/octet-stream"),  # an MP4
        (b"<html>", "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_sniff_content_type(head: bytes, content_type: str) -> None:
    assert sniff_content_type(head) == content_type


def test_image_files_expands_folders_and_keeps_named_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.JPG").write_bytes(b"1")
    (tmp_path / "a" / "notes.txt").write_text("skip me")
    (tmp_path / "a" / "deep").mkdir()
    (tmp_path / "a" / "deep" / "y.webp").write_bytes(b"2")
    named = tmp_path / "named.bin"
    named.write_bytes(b"3")
    assert image_files([tmp_path / "a", named]) == [tmp_path / "a" / "deep" / "y.webp", tmp_path / "a" / "x.JPG", named]
    with pytest.raises(FileNotFoundError, match="nope"):
        image_files([tmp_path / "nope"])


def test_settings_survive_the_trip_through_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(kafka_bootstrap="10.0.0.1:9092", worker_concurrency=7, state_dir=Path("/tmp/x"))
    for name, value in original.as_env().items():
        monkeypatch.setenv(name, value)
    assert Settings() == original


def test_real_files_of_every_decoded_format_are_named_by_their_bytes() -> None:
    photo = Image.new("RGB", (64, 48), (200, 30, 30))
    files = {
        "image/bmp": images.encode(photo, "BMP"),
        "image/tiff": images.encode(photo, "TIFF"),
        "image/vnd.microsoft.icon": images.encode(photo, "ICO"),
        "image/heic": images.heif(photo),
        "image/avif": images.encode(photo, "AVIF"),
    }
    assert {kind: sniff_content_type(data) for kind, data in files.items()} == {kind: kind for kind in files}
