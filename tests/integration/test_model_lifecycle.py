"""Deploy and roll back classifier versions on a real Triton, with traffic flowing."""

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from modstream.core.events import ModerationDecision, Outcome
from modstream.core.kafka import kafka_consumer
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.storage import ObjectStore
from modstream.ingest.sdk import UploadClient
from modstream.models import lifecycle
from modstream.models.candidate import CandidateRefused, check_candidate, read_label_file
from modstream.models.control import TritonControl
from modstream.models.repository import Repository
from modstream.stack import start_service, start_stack, stop_stack

from tests import candidates, images
from tests.conftest import loopback_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def copy_repository(target: Path) -> Path:
    """The project's model repository, copied so versions can be added and pinned freely."""
    shutil.copytree(PROJECT_ROOT / "model_repository", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("lifecycle")
    settings = loopback_settings(
        root / "state", model_repository=copy_repository(root / "repository"), consumer_group="lifecycle"
    )
    try:
        start_stack(settings, timeout=240)
        ObjectStore(settings).ensure_bucket(settings.uploads_bucket)
        start_service(settings, "worker", timeout=120)
        yield settings
    finally:
        stop_stack(settings)


def test_broken_candidates_are_refused_before_the_repository(tmp_path: Path) -> None:
    model, labels = candidates.corrupt(tmp_path)
    with pytest.raises(CandidateRefused, match="onnxruntime cannot load it"):
        check_candidate(model, read_label_file(labels))
    model, _ = candidates.same_model(tmp_path)
    with pytest.raises(CandidateRefused, match="names 2 labels"):
        check_candidate(model, read_label_file(candidates.write_labels(tmp_path / "two.txt", ["nsfl", "nsfw"])))
    with pytest.raises(CandidateRefused, match="duplicates"):
        read_label_file(candidates.write_labels(tmp_path / "dup.txt", ["nsfl", "nsfl", "sfw"]))
    explicit, _ = candidates.with_explicit_label(tmp_path)
    with pytest.raises(CandidateRefused, match="names 3 labels"):  # a labels file that does not match
        check_candidate(explicit, candidates.DEFAULT_LABELS)


def test_a_version_triton_cannot_load_leaves_the_serving_one_untouched(private_stack: Settings) -> None:
    repository = Repository(private_stack.model_repository)
    triton = TritonControl(private_stack.triton_http)
    model, labels = candidates.same_model(private_stack.state_dir)
    version = repository.add_version(model, read_label_file(labels))
    (version.path / "model.onnx").write_bytes(b"damaged after the check")  # what the check could not see
    with pytest.raises(lifecycle.DeployFailed, match=f"could not load image_safety version {version.number}"):
        lifecycle.serve(repository, triton, version.number, lambda message: None)
    repository.remove_version(version.number)
    assert repository.serving() == 1
    assert triton.ready_versions("image_safety") == {1}


async def test_deploy_then_roll_back_under_continuous_load(private_stack: Settings) -> None:
    repository = Repository(private_stack.model_repository)
    triton = TritonControl(private_stack.triton_http)
    model, labels = candidates.with_explicit_label(private_stack.state_dir)
    uploaded: list[str] = []
    stop = asyncio.Event()

    async def keep_uploading() -> None:
        photos = [data for _, data in images.varied_images(20, seed=3)]
        async with UploadClient(private_stack) as client:
            while not stop.is_set():
                uploaded.append((await client.upload_image(photos[len(uploaded) % 20], "lifecycle")).event_id)
                await asyncio.sleep(0.1)

    uploads = asyncio.create_task(keep_uploading())
    await asyncio.sleep(6)
    deployed = await asyncio.to_thread(lifecycle.deploy, repository, triton, model, labels, lambda m: None)
    assert (deployed.previous, deployed.serving) == (1, 2)
    await asyncio.sleep(8)
    rolled = await asyncio.to_thread(lifecycle.rollback, repository, triton, lambda m: None)
    assert (rolled.previous, rolled.serving) == (2, 1)
    await asyncio.sleep(6)
    stop.set()
    await uploads

    decisions: dict[str, ModerationDecision] = {}
    async with kafka_consumer(private_stack, private_stack.topic_decisions) as consumer:
        for _ in range(240):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    decision = ModerationDecision.model_validate_json(record.value or b"")
                    decisions.setdefault(decision.event_id, decision)
            if set(uploaded) <= set(decisions):
                break
    assert set(uploaded) <= set(decisions), f"{len(set(uploaded) - set(decisions))} uploads without a decision"
    ours = sorted((decisions[e] for e in uploaded), key=lambda d: d.occurred_at)
    assert not [d for d in ours if d.decision is Outcome.ERROR]
    versions = [d.model.version for d in ours if d.model]
    runs = [v for i, v in enumerate(versions) if i == 0 or v != versions[i - 1]]
    assert runs == ["1", "2", "1"], runs
    for decision in ours:
        assert decision.model is not None
        if decision.model.version == "2":  # a label the policy does not know: a person decides
            assert "explicit" in decision.scores
            assert decision.decision is Outcome.REVIEW and "unknown_label:explicit" in decision.reasons
        else:
            assert "explicit" not in decision.scores
    print(f"{len(ours)} uploads, versions in order: {[(v, versions.count(v)) for v in ('1', '2')]}")
