"""Per-label quality of automatic decisions, from reviewers' verdicts: pure, over a ``Sample``.

For each label and model version (and tenant when asked): precision, recall and F1 when
the label's score reaching ``review_at`` (and ``block_at``) is read as "the label applies",
against the reviewer's label set; weighted so that the labelled decisions stand for all of
them (``sample``). Beside them: Hamming loss over the label sets, and how often automatic
``allow``/``block`` decisions agree with the reviewer's approve/remove (audit samples).
"""

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modstream.core import stats
from modstream.core.evidence import Bools, Floats, Sample
from modstream.core.stats import Rate
from modstream.quality import metrics
from modstream.quality.sample import Gap, stratum_weights

HUMAN_OUTCOME = {"approve": "allow", "remove": "block"}


@dataclass(frozen=True)
class AtThreshold:
    threshold: float | None
    """The threshold in force at the end of the period (each decision is judged by its own)."""
    precision: Rate
    recall: Rate
    f1: Rate


@dataclass(frozen=True)
class LabelQuality:
    label: str
    model_version: str
    tenant: str | None
    decisions: int
    labelled: int
    positives: int
    """Labelled decisions whose reviewer gave this label."""
    at_review: AtThreshold
    at_block: AtThreshold


@dataclass(frozen=True)
class SliceQuality:
    """What holds for all labels of one model version (and tenant)."""

    model_version: str
    tenant: str | None
    decisions: int
    labelled: int
    hamming_loss: Rate
    agreement: Rate
    """Automatic allow/block vs the reviewer's approve/remove, over audit samples."""
    gaps: list[Gap]


@dataclass(frozen=True)
class QualityReport:
    labels: list[LabelQuality] = field(default_factory=list)
    slices: list[SliceQuality] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quality_report(sample: Sample, *, by_tenant: bool = False, only_label: str | None = None) -> QualityReport:
    report = QualityReport()
    for version, tenant, part in _slices(sample, by_tenant):
        weights, gaps = stratum_weights(part)
        labelled = part.labelled
        report.slices.append(_slice_quality(part, weights, version, tenant, gaps))
        for label in sorted(part.labels):
            if only_label is not None and label != only_label:
                continue
            columns = part.labels[label]
            scored = labelled & ~np.isnan(columns.score)
            w, truth, score = weights[scored], columns.truth[scored], columns.score[scored]
            report.labels.append(
                LabelQuality(
                    label=label,
                    model_version=version,
                    tenant=tenant,
                    decisions=len(part),
                    labelled=int(scored.sum()),
                    positives=int(truth.sum()),
                    at_review=_at(truth, score >= columns.review_at[scored], w, columns.review_at),
                    at_block=_at(truth, score >= columns.block_at[scored], w, columns.block_at),
                )
            )
    return report


def _slices(sample: Sample, by_tenant: bool) -> list[tuple[str, str | None, Sample]]:
    keys = sorted({(v, t if by_tenant else None) for v, t in zip(sample.model_version, sample.tenant, strict=True)})
    parts = []
    for version, tenant in keys:
        keep = sample.model_version == version
        if tenant is not None:
            keep &= sample.tenant == tenant
        parts.append((str(version), tenant, sample.where(keep)))
    return parts


def _at(truth: Bools, predicted: Bools, weights: Floats, thresholds: Floats) -> AtThreshold:
    known = thresholds[~np.isnan(thresholds)]
    return AtThreshold(
        threshold=float(known[-1]) if known.size else None,
        precision=stats.precision(truth, predicted, weights),
        recall=stats.recall(truth, predicted, weights),
        f1=stats.f1(truth, predicted, weights),
    )


def _slice_quality(part: Sample, weights: Floats, version: str, tenant: str | None, gaps: list[Gap]) -> SliceQuality:
    labelled = part.labelled
    names = sorted(part.labels)
    if names:
        columns = [part.labels[n] for n in names]
        true_sets = np.column_stack([c.truth[labelled] for c in columns])
        # A missing score (NaN) never reaches a threshold.
        predicted = np.column_stack([c.score[labelled] >= c.review_at[labelled] for c in columns])
        hamming = metrics.hamming_loss(true_sets, predicted, weights[labelled])
    else:
        hamming = stats.rate(np.zeros(0, dtype=bool))
    audited = labelled & (part.outcome != "review")
    human = np.asarray([HUMAN_OUTCOME[v] for v in part.verdict[audited]], dtype=np.str_)
    return SliceQuality(
        model_version=version,
        tenant=tenant,
        decisions=len(part),
        labelled=int(labelled.sum()),
        hamming_loss=hamming,
        agreement=metrics.agreement(part.outcome[audited], human, weights[audited]),
        gaps=gaps,
    )
