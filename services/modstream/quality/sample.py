"""The labelled sample: automatic decisions, the verdicts that label some of them, and the
weights that make the labelled ones stand for all of them. Pure: arrays in, arrays out.

Who reaches a reviewer decides who is labelled: every ``review`` decision, and ``allow`` or
``block`` decisions only as an audit sample at the rate in force. A stratum is one tenant's
decisions with one outcome under one audit rate; each labelled decision weighs
N_h / n_h (decisions in its stratum / labelled ones in it). A stratum with decisions but no
labelled one cannot be stood for: it is reported as a gap, never silently dropped.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from modstream.core.evidence import Floats, Sample, Strings


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
