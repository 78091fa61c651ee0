"""How a shadowed candidate differs from the serving model, from the shadow records.

Pure: records in, numbers out. Records are grouped by the pair of versions that
scored them (a deploy or a new shadow starts a new pair), and a replayed event counts
once per pair (its last record).

A label only the shadow scores (a new label, say ``emblem.red`` from a new ``heads``
version) has nothing to be compared with: for it, the comparison gives its score
distribution over the shadowed images and how well it agrees with reviewers who labelled
some of them (``reviewer_agreement``): the shadow records joined with the verdicts on
``event_id``, a verdict naming the label being a positive and one not naming it a negative.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from modstream.core import stats
from modstream.core.events import ModelRef, Outcome, ReviewVerdict, ShadowScore
from modstream.core.evidence import current_verdicts
from modstream.core.stats import Rate
from modstream.models.compare_at import DEFAULT_AT as DEFAULT_AT  # its own module: the CLI's default

HISTOGRAM_BINS = 10
"""Equal-width bins over [0, 1] for a new label's scores: bin i holds [i/10, (i+1)/10), the
last one also 1.0."""

_BARS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class LabelDifference:
    label: str
    images: int
    mean_difference: float  # shadow minus serving: positive when the candidate scores higher
    mean_absolute: float
    max_absolute: float


@dataclass(frozen=True)
class Comparison:
    serving: ModelRef
    shadow: ModelRef
    images: int
    agreement: float  # the share of images where both scores lead to the same decision
    labels: list[LabelDifference]  # labels both models have
    only_serving: list[str]
    only_shadow: list[str]
    outcomes: dict[tuple[Outcome, Outcome], int]  # (serving decision, shadow decision) -> images
    new_labels: list["NewLabel"] = field(default_factory=list)  # one per label of only_shadow


@dataclass(frozen=True)
class ScoreDistribution:
    """A label's scores over the shadowed images: quantiles as numpy's default (linear)
    interpolation gives them, and counts in ``HISTOGRAM_BINS`` equal bins over [0, 1]."""

    n: int
    min: float
    q1: float
    median: float
    q3: float
    p90: float
    p99: float
    max: float
    histogram: list[int]


@dataclass(frozen=True)
class ReviewerAgreement:
    """A new label against the reviewers' label sets, on the shadowed images they labelled.

    Read "predicted" as: the shadow's score for the label is at least ``at``. ``precision``
    is the share of predicted items that reviewers gave the label, ``recall`` the share of the
    reviewers' positives that are predicted, ``agreement`` the share of labelled items where
    both say the same; each with its Wilson 95 % interval (value None when nothing is in its
    denominator). Unweighted: the labelled items are the ones the serving policy sent to
    review and the audit sample, not a random sample of the traffic.
    """

    since: datetime | None
    """Verdicts given from this moment on count (the label's definition); None: every verdict."""
    at: float
    labelled: int
    """Shadowed images with a verdict that counts."""
    positives: int
    """Of those, the ones whose verdict names the label."""
    predicted: int
    """Of those, the ones the shadow scores at least ``at``."""
    true_positives: int
    precision: Rate
    recall: Rate
    agreement: Rate


@dataclass(frozen=True)
class NewLabel:
    """A label only the shadow scores."""

    label: str
    scores: ScoreDistribution
    reviewers: ReviewerAgreement


def compare(
    records: Iterable[ShadowScore],
    verdicts: Iterable[ReviewVerdict] = (),
    *,
    since: Mapping[str, datetime] | None = None,
    at: float = DEFAULT_AT,
) -> list[Comparison]:
    """One comparison per (serving, shadow) pair, in the order the pairs first appear.

    For the labels only the shadow scores, their score distribution and their agreement with
    ``verdicts`` at threshold ``at``; ``since`` maps such a label to the moment its verdicts
    start to count (its definition; a label it does not name counts every verdict).
    """
    pairs: dict[tuple[ModelRef, ModelRef], dict[str, ShadowScore]] = {}
    for record in records:
        pairs.setdefault((record.serving_model, record.shadow_model), {})[record.event_id] = record
    given = list(verdicts)
    return [
        _compare(serving, shadow, list(by_event.values()), given, since or {}, at)
        for (serving, shadow), by_event in pairs.items()
    ]


def score_distribution(scores: Sequence[float]) -> ScoreDistribution:
    """Quantiles and a ``HISTOGRAM_BINS``-bin histogram of scores in [0, 1]; ValueError when
    there is none, or one is outside [0, 1]."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("a score distribution needs some scores, in one dimension")
    fine = stats.histogram(values)  # stats.BINS bins; checks [0, 1]
    q1, median, q3, p90, p99 = (float(q) for q in np.percentile(values, [25, 50, 75, 90, 99]))
    return ScoreDistribution(
        n=int(values.size),
        min=float(values.min()),
        q1=q1,
        median=median,
        q3=q3,
        p90=p90,
        p99=p99,
        max=float(values.max()),
        histogram=[int(n) for n in fine.reshape(HISTOGRAM_BINS, -1).sum(axis=1)],
    )


def reviewer_agreement(
    records: Iterable[ShadowScore],
    verdicts: Iterable[ReviewVerdict],
    label: str,
    *,
    since: datetime | None = None,
    at: float = DEFAULT_AT,
) -> ReviewerAgreement:
    """The shadow's scores for ``label`` against the reviewers' verdicts on the same events.

    ``records``: one per event (the last one counts when an event repeats), those without a
    score for ``label`` left out. ``verdicts``: the one that counts per event is the latest
    given at or after ``since`` that is not a second review (``core.evidence.current_verdicts``); a verdict
    whose label set names ``label`` is a positive, any other a negative (the reviewer could
    have ticked it and did not). ``at``: predicted positive when the score is at least this.
    """
    if not 0.0 <= at <= 1.0:
        raise ValueError(f"the threshold must lie in [0, 1], not {at}")
    scores = {r.event_id: r.shadow_scores[label] for r in records if label in r.shadow_scores}
    counting = current_verdicts(verdicts, since)
    joined = [(scores[event], label in counting[event].labels) for event in scores if event in counting]
    predicted = np.array([score >= at for score, _ in joined], dtype=bool)
    truth = np.array([given for _, given in joined], dtype=bool)
    # Plain counts of labelled items: Wilson's interval needs no minimum (core.stats.MIN_SAMPLE).
    return ReviewerAgreement(
        since=since,
        at=at,
        labelled=len(joined),
        positives=int(truth.sum()),
        predicted=int(predicted.sum()),
        true_positives=int(np.sum(predicted & truth)),
        precision=stats.precision(truth, predicted, min_sample=0),
        recall=stats.recall(truth, predicted, min_sample=0),
        agreement=stats.rate(predicted == truth, min_sample=0),
    )


def bar(histogram: Sequence[int]) -> str:
    """A histogram as one row of block characters, each bin's height relative to the fullest
    (an empty bin is a dot, a non-empty one at least the lowest block)."""
    top = max(histogram, default=0)
    if top <= 0:
        return "·" * len(histogram)
    return "".join("·" if n <= 0 else _BARS[-(-n * len(_BARS) // top) - 1] for n in histogram)


def as_plain(comparison: Comparison) -> dict[str, object]:
    """The comparison as JSON-ready values (the outcome pairs as a list: JSON keys are strings)."""
    plain = asdict(comparison)
    plain["serving"], plain["shadow"] = comparison.serving.model_dump(), comparison.shadow.model_dump()
    plain["outcomes"] = [
        {"serving": serving.value, "shadow": shadow.value, "images": n}
        for (serving, shadow), n in comparison.outcomes.items()
    ]
    for new, label in zip(plain["new_labels"], comparison.new_labels, strict=True):
        since = label.reviewers.since
        new["reviewers"]["since"] = None if since is None else since.isoformat()
    return plain


def _compare(
    serving: ModelRef,
    shadow: ModelRef,
    records: list[ShadowScore],
    verdicts: list[ReviewVerdict],
    since: Mapping[str, datetime],
    at: float,
) -> Comparison:
    served_labels = {label for r in records for label in r.serving_scores}
    shadow_labels = {label for r in records for label in r.shadow_scores}
    outcomes = Counter((r.serving_decision, r.shadow_decision) for r in records)
    agreeing = sum(n for (a, b), n in outcomes.items() if a == b)
    only_shadow = sorted(shadow_labels - served_labels)
    return Comparison(
        serving=serving,
        shadow=shadow,
        images=len(records),
        agreement=agreeing / len(records),
        labels=[_difference(label, records) for label in sorted(served_labels & shadow_labels)],
        only_serving=sorted(served_labels - shadow_labels),
        only_shadow=only_shadow,
        outcomes=dict(outcomes),
        new_labels=[
            NewLabel(
                label=label,
                scores=score_distribution([r.shadow_scores[label] for r in records if label in r.shadow_scores]),
                reviewers=reviewer_agreement(records, verdicts, label, since=since.get(label), at=at),
            )
            for label in only_shadow
        ],
    )


def _difference(label: str, records: list[ShadowScore]) -> LabelDifference:
    differences = [
        r.shadow_scores[label] - r.serving_scores[label]
        for r in records
        if label in r.shadow_scores and label in r.serving_scores
    ]
    return LabelDifference(
        label=label,
        images=len(differences),
        mean_difference=sum(differences) / len(differences),
        mean_absolute=sum(abs(d) for d in differences) / len(differences),
        max_absolute=max(abs(d) for d in differences),
    )
