"""``modstream bench --text``'s pure parts: the error rate, judging a reading against the drawn
lines, the drawn images, the ensemble written without its ocr step, and the report."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from modstream.bench.ocr import (
    COPY_SUFFIX,
    PHRASES,
    DrawnLine,
    Measured,
    NoOcrStep,
    Pass,
    TextSample,
    Throughput,
    accuracy,
    draw_text,
    error_rate,
    judge,
    levenshtein,
    remove_copies,
    report,
    without_step,
    write_without_ocr,
)
from modstream.core.events import TextLine, TextReading
from PIL import Image
from tritonclient.grpc import model_config_pb2

REPOSITORY = Path(__file__).parents[2] / "model_repository"


def test_levenshtein_counts_single_character_edits_case_sensitively() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == levenshtein("abc", "") == 3
    assert levenshtein("Free", "free") == 1
    assert levenshtein("call +1 555 0100", "call+15550100") == 3  # the spaces a recogniser drops


def test_the_error_rate_weighs_each_reference_by_its_length() -> None:
    assert error_rate([("abcd", "abcd")]) == 0.0
    assert error_rate([("abcd", "")]) == 1.0
    # 1 error in 10 characters and 1 in 2: 2 / 12, not the mean of 0.1 and 0.5.
    assert error_rate([("abcdefghij", "abcdefghiX"), ("ab", "a")]) == pytest.approx(2 / 12)
    assert error_rate([]) == 0.0


def _sample(*lines: DrawnLine, width: int = 640, height: int = 320) -> TextSample:
    return TextSample("s", b"", b"", width, height, "dark_on_light", lines)


def _line(text: str, box: tuple[float, float, float, float]) -> TextLine:
    return TextLine(text=text, confidence=0.9, box=box)


def test_a_reading_is_judged_line_by_line_and_as_a_whole() -> None:
    sample = _sample(
        DrawnLine("FREE CRYPTO GIVEAWAY", 40, (0.1, 0.1, 0.9, 0.2)),
        DrawnLine("call +1 555 0100", 16, (0.1, 0.3, 0.5, 0.35)),
        DrawnLine("DM @crypto_king_77", 20, (0.1, 0.5, 0.6, 0.56)),
    )
    reading = TextReading(
        regions=4,
        lines=[
            # The first line cut in two at a wide gap; the pieces come back in reading order.
            _line("CRYPTO GIVEAWAY", (0.35, 0.08, 0.92, 0.22)),
            _line("FREE", (0.08, 0.08, 0.3, 0.22)),
            _line("call+15550100", (0.08, 0.28, 0.52, 0.37)),
            _line("texture", (0.7, 0.8, 0.9, 0.9)),  # overlaps nothing drawn
        ],
    )
    result = judge(sample, reading, detect_side=320)
    assert [(line.read, line.detect_px) for line in result.lines] == [
        ("FREE CRYPTO GIVEAWAY", 20.0),  # pieces joined left to right; 40 px at 320 / 640
        ("call+15550100", 8.0),
        ("", 10.0),  # not found
    ]
    assert result.extra_lines == 1 and result.lines_read == 4
    assert result.reference == "FREE CRYPTO GIVEAWAY call +1 555 0100 DM @crypto_king_77"
    assert result.read == "CRYPTO GIVEAWAY FREE call+15550100 texture"

    found = accuracy([result])
    assert found["cer"] == round(levenshtein(result.reference, result.read) / len(result.reference), 4)
    assert found["lines_drawn"] == 3 and found["lines_found"] == 2 and found["extra_lines"] == 1
    assert found["by_font_px"] == {
        "16": {"lines": 1, "found": 1, "cer": round(3 / 16, 4)},
        "20": {"lines": 1, "found": 0, "cer": 1.0},
        "40": {"lines": 1, "found": 1, "cer": 0.0},
    }
    assert list(found["by_detect_px"]) == ["08-12", "16+"]  # sorted small to large
    assert found["by_detect_px"]["08-12"]["lines"] == 2
    assert found["worst"][0]["drawn"] == result.reference
    assert [(line["reference"], line["read"], line["font_px"]) for line in found["misread_lines"]] == [
        ("call +1 555 0100", "call+15550100", 16),
        ("DM @crypto_king_77", "", 20),
    ]


def test_the_text_drawn_is_the_ground_truth_and_the_same_for_a_seed() -> None:
    photo = Image.linear_gradient("L").convert("RGB").resize((400, 300))
    styles = ("dark_on_light", "light_on_dark", "outlined")
    drawn = [draw_text(photo, np.random.default_rng(7), style) for style in styles]
    again = [draw_text(photo, np.random.default_rng(7), style) for style in styles]
    for (image, lines), (same_image, same_lines) in zip(drawn, again, strict=True):
        assert lines == same_lines and image.tobytes() == same_image.tobytes()
        assert 2 <= len(lines) <= 4
        assert len({line.text for line in lines}) == len(lines) and all(line.text in PHRASES for line in lines)
        for line in lines:
            x0, y0, x1, y1 = line.box
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        assert [line.box[1] for line in lines] == sorted(line.box[1] for line in lines)  # top to bottom
    assert photo.tobytes() != drawn[0][0].tobytes()  # drawn on a copy, the photo kept for "without text"


def _config(name: str) -> model_config_pb2.ModelConfig:
    path = REPOSITORY / name / "config.pbtxt"
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_the_ensemble_without_ocr_loses_the_step_and_all_that_only_served_it() -> None:
    serving = _config("moderation")
    copy, losing = without_step(serving, "ocr", "moderation" + COPY_SUFFIX, COPY_SUFFIX)
    steps = {step.model_name: step for step in copy.ensemble_scheduling.step}
    assert copy.name == "moderation_bench_no_ocr"
    assert "ocr" not in steps
    assert "TEXT" not in {output.name for output in copy.output}
    # The preprocess model is no longer asked for the image it makes only for ocr.
    assert set(steps["preprocess"].output_map) == {"PIXELS", "PDQ", "PDQ_QUALITY"}
    # The taxonomy step runs a copy of its model without the ocr inputs.
    assert losing == {"taxonomy": {"ocr_SCORES", "ocr_LABELS", "ocr_VERSION"}}
    assert not any(key.startswith("ocr_") for key in steps["taxonomy" + COPY_SUFFIX].input_map)
    assert len(steps) == len(serving.ensemble_scheduling.step) - 1
    assert "ocr" in {step.model_name for step in serving.ensemble_scheduling.step}  # the original untouched
    with pytest.raises(NoOcrStep, match="no 'ocr' step"):
        without_step(_config("moderation_light"), "ocr", "x", COPY_SUFFIX)


def test_the_copies_are_written_beside_the_serving_models_and_removed_by_name(tmp_path: Path) -> None:
    for name in ("moderation", "taxonomy"):
        shutil.copytree(REPOSITORY / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    names = write_without_ocr(tmp_path, "moderation")
    assert names == ["taxonomy_bench_no_ocr", "moderation_bench_no_ocr"]  # loaded in this order
    taxonomy = text_format.Parse(
        (tmp_path / "taxonomy_bench_no_ocr" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    assert taxonomy.name == "taxonomy_bench_no_ocr"
    assert {entry.name for entry in taxonomy.input} == {
        entry.name for entry in _config("taxonomy").input if not entry.name.startswith("ocr_")
    }
    assert (tmp_path / "taxonomy_bench_no_ocr" / "taxonomy.yaml").read_bytes() == (
        tmp_path / "taxonomy" / "taxonomy.yaml"
    ).read_bytes()
    assert (tmp_path / "taxonomy_bench_no_ocr" / "1" / "model.py").is_file()
    assert (tmp_path / "moderation_bench_no_ocr" / "1").is_dir()
    assert write_without_ocr(tmp_path, "moderation") == names  # an earlier run's copies written over
    remove_copies(tmp_path, [*names, "taxonomy"])  # a serving model's name is never removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moderation", "taxonomy"]


def _measured(off_ms: float, on_ms: float, text_extra_ms: float, cer_read: str) -> Measured:
    passes = []
    for spread in (-1.0, 0.0, 5.0):  # the median is the middle run
        for ocr in (False, True):
            for text in (False, True):
                ms = (on_ms if ocr else off_ms) + (text_extra_ms if ocr and text else 0.0) + spread
                passes.append(Pass(ocr, text, 10, 1.0, ms * 10 / 1000, 0))
    windows = [Throughput(ocr, text, 10.0 if ocr else 12.0, 50.0) for ocr in (False, True) for text in (False, True)]
    sample = _sample(DrawnLine("WIN BIG", 32, (0.1, 0.1, 0.5, 0.2)))
    reading = TextReading(regions=1, lines=[_line(cer_read, (0.1, 0.1, 0.5, 0.2))])
    return Measured(
        passes=passes,
        throughput=windows,
        results=[judge(sample, reading, 320)],
        no_text_readings=[TextReading(regions=0), TextReading(regions=2, lines=[_line("x", (0, 0, 1, 1))])],
        idle_cpu_percent=0.5,
        labels_only_with_ocr=["text.present"],
    )


def _report(measured: Measured) -> dict[str, object]:
    return report(
        measured,
        images=10,
        seed=1,
        ensemble="moderation",
        copy="moderation_bench_no_ocr",
        detect_side=320,
        repetitions=3,
        concurrency=8,
        seconds=3.0,
        load_average=((1.0, 1.0, 1.0), (1.5, 1.2, 1.1)),
    )


def test_the_report_gives_medians_ratios_to_ocr_off_and_the_issues_goals() -> None:
    found = _report(_measured(off_ms=100.0, on_ms=110.0, text_extra_ms=120.0, cer_read="WIN BIG"))
    cost = found["cost"]
    assert isinstance(cost, dict)
    assert cost["ocr_off"]["without_text"]["cpu_ms_per_image"] == 100.0
    assert cost["ocr_on"]["with_text"]["cpu_ms_per_image"] == 230.0
    assert cost["ocr_off"]["with_text"]["cpu_ms_per_image_runs"] == [99.0, 100.0, 105.0]
    versus = found["ocr_on_vs_off"]
    assert isinstance(versus, dict)
    assert versus["without_text"] == {
        "cpu_cost": 1.1,
        "extra_cpu_ms_per_image": 10.0,
        "concurrent_throughput": round(10 / 12, 3),
        "concurrent_cpu_cost": 1.0,
    }
    assert versus["with_text"]["extra_cpu_ms_per_image"] == 130.0
    assert found["without_text_read"] == {"images": 2, "with_regions": 1, "regions": 2, "lines_read": 1}
    assert [goal["met"] for goal in found["goals"]] == [True, True, True]  # type: ignore[attr-defined]

    missed = _report(_measured(off_ms=100.0, on_ms=120.0, text_extra_ms=140.0, cer_read="WINBIG"))
    goals = missed["goals"]
    assert isinstance(goals, list)
    assert [(goal["measured"], goal["at_most"], goal["met"]) for goal in goals] == [
        (1.2, 1.15, False),
        (160.0, 150.0, False),
        (round(1 / 7, 4), 0.05, False),
    ]
