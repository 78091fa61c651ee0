"""Where the model looked, made by the served models: occlusion maps on images whose answer is known.

- The composite (tests/composite.py): its left half makes EfficientNet-Lite0 see alcohol, its
  right half makes nsfwjs answer "sexy". Each label's map must put at least ``OWN_HALF`` of its
  positive mass on its own half. Its halves are adversarial mosaics tied to place and scale, so
  hiding a patch of one is what should lower its label, and nothing else.
- A photo with the emblem pasted on it (bench/emblem.py) and a learned ``emblem.starred`` head
  served: the head's map must put at least ``ON_EMBLEM`` of its mass (median over the images) on
  the emblem's box grown by one map cell (16 px of 224: a 48 px patch that overlaps the emblem
  from outside lowers the score too), and on each image at least ``LIFT`` times the share of the
  image that grown box covers.

Against the session's Triton (tests/conftest.py), not a mock.
"""

import statistics
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from modstream.bench.emblem import examples
from modstream.core.events import ModelRef
from modstream.core.inference import TritonScorer
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.explain.occlusion import box_region, mass_share
from modstream.explain.served import CannotExplain, ExplainUnavailable, ServedSaliency
from modstream.explain.store import SaliencyStore, explainer_for

from tests import composite, emblem_head
from tests.conftest import SHARED_CACHE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
OWN_HALF = 0.70
ON_EMBLEM, LIFT = 0.60, 1.5
EMBLEM_IMAGES = 5
GROWN = 16 / 224


@pytest.fixture
async def served(stack_settings: Settings) -> AsyncIterator[ServedSaliency]:
    saliency = ServedSaliency(stack_settings.triton_grpc)
    yield saliency
    await saliency.close()


async def decided_by(settings: Settings, image: bytes) -> tuple[ModelRef, dict[str, float]]:
    scorer = TritonScorer(settings.triton_grpc, settings.triton_model, settings.inference_timeout)
    try:
        scores = await scorer.score(image)
    finally:
        await scorer.close()
    return scores.model, scores.by_label


def half(side: int) -> np.ndarray:  # type: ignore[type-arg]
    region = np.zeros((224, 224), dtype=bool)
    region[:, :112] = True
    return region if side == 0 else ~region


async def test_each_composite_label_looks_at_its_own_half(stack_settings: Settings, served: ServedSaliency) -> None:
    image, labels = composite.two_label_image()
    model, decided = await decided_by(stack_settings, image)
    found = await served.explain(image, model)
    assert found.model == model and found.copies == 50 and found.method == "occlusion-7x7-48px"
    # Text labels are not the models' to map; text.present is the ocr step's, which the copies skip.
    assert "text.present" in decided and "text.present" not in found.maps
    for side, label in enumerate(labels):
        share = mass_share(np.array(found.maps[label].cells), half(side))
        print(f"{label}: {share:.3f} of its map's mass on its own half; score {found.maps[label].score:.3f}")
        assert found.maps[label].score == pytest.approx(decided[label], abs=1e-4)  # the models that decided
        assert share >= OWN_HALF, f"{label}: {share:.3f} of its mass on its own half"
    print(f"{found.copies} copies in {found.seconds:.2f} s")


async def test_the_learned_emblem_label_looks_at_the_emblem(
    stack_settings: Settings, served: ServedSaliency, tmp_path: Path
) -> None:
    heads = await emblem_head.trained_heads(stack_settings)
    emblem_head.serve(stack_settings, heads, tmp_path / "heads")
    try:
        shares, lifts = [], []
        for shown in list(examples(SHARED_CACHE, EMBLEM_IMAGES, seed=21, share_with_emblem=1.0)):
            assert shown.box is not None
            model, decided = await decided_by(stack_settings, shown.data)
            assert model.components["heads"] == str(emblem_head.VERSION)
            found = await served.explain(shown.data, model)
            x0, y0, x1, y1 = shown.box
            region = box_region((max(x0 - GROWN, 0), max(y0 - GROWN, 0), min(x1 + GROWN, 1), min(y1 + GROWN, 1)))
            share = mass_share(np.array(found.maps[emblem_head.LABEL].cells), region)
            shares.append(share)
            lifts.append(share / float(region.mean()))
            print(
                f"{shown.name}: {emblem_head.LABEL} {decided[emblem_head.LABEL]:.3f}, {share:.3f} of the mass on "
                f"the grown box ({region.mean():.3f} of the image), {found.seconds:.2f} s"
            )
        assert statistics.median(shares) >= ON_EMBLEM, shares
        assert min(lifts) >= LIFT, lifts
    finally:
        emblem_head.restore(stack_settings)


async def test_a_version_no_longer_served_or_no_triton_is_said_plainly(
    stack_settings: Settings, served: ServedSaliency
) -> None:
    image, _ = composite.two_label_image()
    model, _ = await decided_by(stack_settings, image)
    gone = model.model_copy(update={"components": {**model.components, "nsfwjs": "7"}})
    with pytest.raises(CannotExplain, match="nsfwjs version 7 is not served now"):
        await served.explain(image, gone)
    edited = model.model_copy(update={"components": {**model.components, "taxonomy": "000000000000"}})
    with pytest.raises(CannotExplain, match=r"no longer served as it was: taxonomy 000000000000 \(now "):
        await served.explain(image, edited)
    with pytest.raises(CannotExplain, match="'nonesuch'"):
        await served.explain(image, model.model_copy(update={"name": "nonesuch"}))
    nobody = ServedSaliency("127.0.0.1:9", timeout=3)
    with pytest.raises(ExplainUnavailable, match="Triton did not answer"):
        await nobody.explain(image, model)
    await nobody.close()


async def test_maps_are_kept_per_event_and_model_version(stack_settings: Settings) -> None:
    image, _ = composite.two_label_image()
    model, _ = await decided_by(stack_settings, image)
    explainer = explainer_for(stack_settings)
    try:
        first = await explainer.saliency("saliency-kept", image, model)
        again = await explainer.saliency("saliency-kept", image, model)
        assert not first.cached and again.cached and again.saliency == first.saliency
        assert first.ref.key.startswith("saliency/saliency-kept/") and first.ref.bucket == stack_settings.archive_bucket
        other = model.model_copy(update={"version": model.version + "-other"})
        assert (
            await SaliencyStore(ObjectStore(stack_settings), stack_settings.archive_bucket).get(
                "saliency-kept", other, first.saliency.method
            )
            is None
        )
    finally:
        await explainer.close()
