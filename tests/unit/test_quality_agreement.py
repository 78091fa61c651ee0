"""Reviewer agreement from blind double reviews (pure), against scikit-learn."""

import random

import pytest
from modstream.core.evidence import Pair
from modstream.quality.agreement import agreement_report
from sklearn.metrics import cohen_kappa_score


def pairs(count: int, seed: int) -> list[Pair]:
    """Rita and Remy mostly agree; Rex, paired with Rita, answers at random."""
    rng = random.Random(seed)
    made = []
    for i in range(count):
        truth = rng.random() < 0.3
        second = "rex" if i % 3 == 0 else "remy"
        agrees = rng.random() < (0.5 if second == "rex" else 0.9)
        other = truth if agrees else not truth
        made.append(
            Pair(
                item=f"i{i}",
                first_reviewer="rita",
                second_reviewer=second,
                first_labels=frozenset({"nsfw"} if truth else ()),
                second_labels=frozenset({"nsfw"} if other else ()),
                first_verdict="remove" if truth else "approve",
                second_verdict="remove" if other else "approve",
            )
        )
    return made


def test_kappa_per_label_and_reviewer_pair_equal_scikit_learn_and_the_random_reviewer_stands_out() -> None:
    made = pairs(600, seed=4)
    report = agreement_report(made, ["nsfw", "nsfl"])
    nsfw = cohen_kappa_score([("nsfw" in p.first_labels) for p in made], [("nsfw" in p.second_labels) for p in made])
    assert report.by_label["nsfw"].value == pytest.approx(nsfw, abs=1e-12)
    assert report.by_label["nsfl"].value is None  # nobody ever gave it: kappa is undefined
    for names, kappa in report.by_reviewer_pair.items():
        group = [p for p in made if " + ".join(sorted((p.first_reviewer, p.second_reviewer))) == names]
        expected = cohen_kappa_score([p.first_verdict for p in group], [p.second_verdict for p in group])
        assert kappa.value == pytest.approx(expected, abs=1e-12)
    assert set(report.by_reviewer_pair) == {"remy + rita", "rex + rita"}
    remy, rex = report.by_reviewer_pair["remy + rita"].value, report.by_reviewer_pair["rex + rita"].value
    assert remy is not None and rex is not None and remy > 0.6 > 0.2 > rex
    assert report.pairs == 600 and set(report.with_majority) == {"rita", "remy", "rex"}
