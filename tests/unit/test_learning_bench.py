"""The learning-curve benchmark's own logic (its embeddings come from the served ensemble)."""

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from modstream.bench import learning
from modstream.core.settings import Settings


def test_sizes_too_small_for_a_head_are_refused_before_anything_is_embedded(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"at least 24 examples \(half of each kind\); not \[16\]"):
        learning.learning_curve(Settings(state_dir=tmp_path), [16, 48], tmp_path, print, lambda: None)


def test_one_run_fits_on_n_examples_half_of_each_and_measures_on_the_test_set() -> None:
    rng = np.random.default_rng(0)
    pool_y = np.arange(200) % 2 == 0
    test_y = np.arange(100) % 2 == 0
    shift = (np.arange(1280) < 64) * 1.5

    def vectors(y: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
        noise = rng.normal(size=(len(y), 1280))
        return np.asarray(noise + np.where(y[:, None], shift, 0), dtype=np.float32)

    run = learning._run(vectors(pool_y), pool_y, vectors(test_y), test_y, 48, draw=0)
    assert set(run) == {
        "held_out_precision",
        "held_out_recall",
        "test_precision",
        "test_recall",
        "test_false_positive_rate",
        "fit_seconds",
    }
    assert (run["test_precision"] or 0) >= 0.9 and (run["test_recall"] or 0) >= 0.9
    assert (run["test_false_positive_rate"] or 0) <= 0.1
