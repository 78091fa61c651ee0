"""How a shadowed candidate differs from the serving model, from the shadow records.

Pure: records in, numbers out. Records are grouped by the pair of versions that
scored them (a deploy or a new shadow starts a new pair), and a replayed event counts
once per pair (its last record).
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from modstream.core.events import ModelRef, Outcome, ShadowScore


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


def compare(records: Iterable[ShadowScore]) -> list[Comparison]:
    """One comparison per (serving, shadow) pair, in the order the pairs first appear."""
    pairs: dict[tuple[ModelRef, ModelRef], dict[str, ShadowScore]] = {}
    for record in records:
        pairs.setdefault((record.serving_model, record.shadow_model), {})[record.event_id] = record
    return [_compare(serving, shadow, list(by_event.values())) for (serving, shadow), by_event in pairs.items()]


def as_plain(comparison: Comparison) -> dict[str, object]:
    """The comparison as JSON-ready values (the outcome pairs as a list: JSON keys are strings)."""
    plain = asdict(comparison)
    plain["serving"], plain["shadow"] = comparison.serving.model_dump(), comparison.shadow.model_dump()
    plain["outcomes"] = [
        {"serving": serving.value, "shadow": shadow.value, "images": n}
        for (serving, shadow), n in comparison.outcomes.items()
    ]
    return plain


def _compare(serving: ModelRef, shadow: ModelRef, records: list[ShadowScore]) -> Comparison:
    served_labels = {label for r in records for label in r.serving_scores}
    shadow_labels = {label for r in records for label in r.shadow_scores}
    outcomes = Counter((r.serving_decision, r.shadow_decision) for r in records)
    agreeing = sum(n for (a, b), n in outcomes.items() if a == b)
    return Comparison(
        serving=serving,
        shadow=shadow,
        images=len(records),
        agreement=agreeing / len(records),
        labels=[_difference(label, records) for label in sorted(served_labels & shadow_labels)],
        only_serving=sorted(served_labels - shadow_labels),
        only_shadow=sorted(shadow_labels - served_labels),
        outcomes=dict(outcomes),
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
