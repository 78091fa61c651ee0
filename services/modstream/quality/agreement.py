"""How much reviewers agree, from items that two reviewers judged blind. Pure.

A double-reviewed item has a first verdict (the one that decided) and a second, given
without seeing it. Cohen's kappa per label compares their label sets label by label; per
reviewer pair it compares their approve/remove. Each reviewer's agreement with the others'
majority says who drifts from the team.
"""

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from modstream.core.evidence import Pair
from modstream.core.stats import Rate
from modstream.quality import metrics
from modstream.quality.metrics import Kappa


@dataclass(frozen=True)
class AgreementReport:
    pairs: int
    by_label: dict[str, Kappa] = field(default_factory=dict)
    by_reviewer_pair: dict[str, Kappa] = field(default_factory=dict)
    """"a + b" -> kappa of their approve/remove on the items both judged."""
    with_majority: dict[str, Rate] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def agreement_report(pairs: list[Pair], labels: list[str]) -> AgreementReport:
    by_label = {
        label: metrics.cohen_kappa([label in p.first_labels for p in pairs], [label in p.second_labels for p in pairs])
        for label in labels
    }
    grouped: defaultdict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        grouped[" + ".join(sorted((p.first_reviewer, p.second_reviewer)))].append(p)
    by_pair = {
        names: metrics.cohen_kappa([p.first_verdict for p in group], [p.second_verdict for p in group])
        for names, group in sorted(grouped.items())
    }
    verdicts = [(p.item, p.first_reviewer, p.first_verdict) for p in pairs]
    verdicts += [(p.item, p.second_reviewer, p.second_verdict) for p in pairs]
    return AgreementReport(
        pairs=len(pairs),
        by_label=by_label,
        by_reviewer_pair=by_pair,
        with_majority=dict(sorted(metrics.majority_agreement(verdicts).items())),
    )
