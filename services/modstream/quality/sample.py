"""The labelled sample: automatic decisions, the verdicts that label some of them, and the
weights that make the labelled ones stand for all of them. Pure: arrays in, arrays out.

Who reaches a reviewer decides who is labelled: every ``review`` decision, and ``allow`` or
``block`` decisions only as an audit sample at the rate in force. A stratum is one tenant's
decisions with one outcome under one audit rate; each labelled decision weighs
N_h / n_h (decisions in its stratum / labelled ones in it). A stratum with decisions but no
labelled one cannot be stood for: it is reported as a gap, never silently dropped.
"""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Strings = npt.NDArray[np.str_]
Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class LabelColumns:
    """One label's values per decision (NaN where the decision had no such score/threshold)."""

    score: Floats
    review_at: Floats
    block_at: Floats
    truth: Bools
    """Whether the reviewer's label set holds the label (False where unlabelled)."""


@dataclass(frozen=True, eq=False)
class Sample:
    """Automatic decisions of a period, one entry per decision in every array."""

    tenant: Strings
    model_version: Strings
    outcome: Strings
    """allow | review | block, as decided automatically."""
    audit_rate: Floats
    audit_sample: Bools
    verdict: Strings
    """approve | remove from the (first) verdict; "" where nobody reviewed it."""
    labels: dict[str, LabelColumns] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.outcome)

    @property
    def labelled(self) -> Bools:
        return np.asarray(self.verdict != "", dtype=np.bool_)

    def where(self, keep: Bools) -> "Sample":
        """The decisions where ``keep`` is true."""
        return Sample(
            tenant=self.tenant[keep],
            model_version=self.model_version[keep],
            outcome=self.outcome[keep],
            audit_rate=self.audit_rate[keep],
            audit_sample=self.audit_sample[keep],
            verdict=self.verdict[keep],
            labels={
                name: LabelColumns(c.score[keep], c.review_at[keep], c.block_at[keep], c.truth[keep])
                for name, c in self.labels.items()
            },
        )


@dataclass(frozen=True)
class Gap:
    """A stratum with decisions and no verdict: the estimates do not cover it."""

    tenant: str
    outcome: str
    audit_rate: float
    decisions: int


def strata(sample: Sample) -> Strings:
    keys = [f"{t}\x1f{o}\x1f{r!r}" for t, o, r in zip(sample.tenant, sample.outcome, sample.audit_rate, strict=True)]
    return np.asarray(keys, dtype=np.str_)


def stratum_weights(sample: Sample) -> tuple[Floats, list[Gap]]:
    """Per decision: N_h / n_h if labelled, 0 otherwise; and the strata nobody labelled."""
    keys = strata(sample)
    labelled = sample.labelled
    population = Counter(keys.tolist())
    reviewed = Counter(keys[labelled].tolist())
    weights = np.zeros(len(sample), dtype=np.float64)
    for key, size in reviewed.items():
        weights[(keys == key) & labelled] = population[key] / size
    gaps = []
    for key, size in sorted(population.items()):
        if key not in reviewed:
            tenant, outcome, rate = key.split("\x1f")
            gaps.append(Gap(tenant=tenant, outcome=outcome, audit_rate=float(rate), decisions=size))
    return weights, gaps
