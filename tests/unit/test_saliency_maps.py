"""Occlusion maps, the pure part: the copies, the fall of each label's score, the mass in a region,
the reasons the review page gives for a label without a map, and the archive's record of where a
decision's maps are kept."""

import random
from datetime import UTC, datetime

import numpy as np
import pytest
from modstream.core.archive import DECISIONS
from modstream.core.events import SaliencyRef
from modstream.explain.occlusion import (
    MAP_SIDE,
    NEUTRAL,
    Occlusion,
    RandomMasks,
    box_region,
    drop_maps,
    mass_share,
    occluded,
)
from modstream.explain.store import saliency_key
from modstream.review.web.saliency import without_map

from tests.archive import decision


def test_each_copy_hides_its_patch_with_grey_and_keeps_the_rest() -> None:
    masking = Occlusion(grid=7, patch=48)
    masks = masking.masks()
    assert masks.shape == (49, 224, 224) and masking.copies == 50
    # A corner patch is cut at the edge; an inner one is whole.
    assert masks[0].sum() == 40 * 40 and masks[8].sum() == 48 * 48
    assert masks.any(axis=0).all()  # every pixel is hidden by some copy
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 3, 224, 224)).astype(np.float32)
    copies = occluded(pixels, masks)
    assert copies.shape == (50, 3, 224, 224)
    np.testing.assert_array_equal(copies[0], pixels[0])
    assert (copies[9][:, masks[8]] == NEUTRAL).all()
    np.testing.assert_array_equal(copies[9][:, ~masks[8]], pixels[0][:, ~masks[8]])


def test_a_label_that_falls_only_when_its_half_is_hidden_has_its_mass_there() -> None:
    masks = Occlusion(grid=7, patch=32).masks()
    left = np.zeros((224, 224), dtype=bool)
    left[:, :112] = True
    # Label 0 loses what share of the left half a copy hides; label 1 the right half's; label 2 never moves.
    hidden_left = masks[:, :, :112].mean(axis=(1, 2))
    hidden_right = masks[:, :, 112:].mean(axis=(1, 2))
    scores = np.array(
        [[0.9, 0.8, 0.5], *[[0.9 - 5 * a, 0.8 - 5 * b, 0.5] for a, b in zip(hidden_left, hidden_right, strict=True)]],
        dtype=np.float32,
    )
    maps = drop_maps(scores, masks)
    assert maps.shape == (3, MAP_SIDE, MAP_SIDE)
    # The middle column of patches (96-128 px) hides both halves: its fall is spread over its
    # whole width, so each label's mass lies in its half and that column, and mostly in its half.
    with_middle = np.zeros((224, 224), dtype=bool)
    with_middle[:, 96:128] = True
    assert mass_share(maps[0], left | with_middle) == pytest.approx(1.0)
    assert mass_share(maps[1], ~left | with_middle) == pytest.approx(1.0)
    assert mass_share(maps[0], left) > 0.9 and mass_share(maps[1], ~left) > 0.9
    assert mass_share(maps[2], left) == 0.0  # nothing fell anywhere: no mass, not a half of it
    with pytest.raises(ValueError, match="50 rows of scores for the image and 48 copies"):
        drop_maps(scores, masks[:48])


def test_a_box_is_found_in_the_stretched_224_px_image() -> None:
    region = box_region((3 / 14, 0.5, 0.5, 1.0))
    assert region.sum() == 64 * 112 and region[112:, 48:112].all()
    drop = np.zeros((MAP_SIDE, MAP_SIDE), dtype=np.float32)
    drop[7:, 3:7] = 1.0  # exactly the box's cells (16 px each)
    drop[0, 0] = -5.0  # a rise in score is not mass
    assert mass_share(drop, region) == pytest.approx(1.0)


def test_maskings_that_cannot_be_mapped_are_refused() -> None:
    with pytest.raises(ValueError, match="grid of 4"):
        Occlusion(grid=4, patch=56)
    with pytest.raises(ValueError, match="leaves gaps"):
        Occlusion(grid=7, patch=16)
    random = RandomMasks(count=10, cells=7, seed=3)
    assert random.masks().shape == (10, 224, 224) and random.copies == 11
    np.testing.assert_array_equal(random.masks(), RandomMasks(count=10, cells=7, seed=3).masks())
    with pytest.raises(ValueError, match=r"pixels are \[1, 3, 224, 224\]"):
        occluded(np.zeros((2, 3, 224, 224), np.float32), random.masks())


def test_labels_without_a_map_say_why() -> None:
    assert "text rules" in without_map("text.scam")
    assert "ocr step" in without_map("text.present")
    assert "no score for the occluded copies" in without_map("sexual.any")


def test_the_archived_decision_says_where_its_maps_are_kept() -> None:
    blocked = decision(random.Random(3), datetime(2026, 12, 8, tzinfo=UTC), nsfw=0.97)
    assert blocked.model is not None
    method = Occlusion().name
    ref = SaliencyRef(
        bucket="archive",
        key=saliency_key(blocked.event_id, blocked.model, method),
        method=method,
        labels=["nsfw", "sfw"],
        seconds=2.31,
    )
    rows = DECISIONS.rows([blocked.model_copy(update={"saliency": ref}), blocked]).to_pylist()
    assert SaliencyRef.model_validate(rows[0]["saliency"]) == ref
    assert rows[1]["saliency"] is None
