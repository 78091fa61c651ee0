"""Model cards (Mitchell et al., 2019) for a served component or ensemble, from what the project
knows. Pure: the caller reads the files and the archive and passes them in.

The sections come from these sources:

- details and licence: THIRD_PARTY_NOTICES;
- intended use and the labels: the taxonomy;
- out of scope: the taxonomy's ``out_of_scope``;
- training data: a head's card;
- quality: reviewers' verdicts, with intervals and the period they cover;
- caveats: read off each label's meaning (softmax scores, object-class proxies).

Where the verdicts are too few (``core.stats.MIN_SAMPLE``) the card says so, instead of
giving a number.
"""

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from modstream.core.stats import MIN_SAMPLE, Rate
from modstream.models.heads import HeadCard
from modstream.models.taxonomy import Taxonomy

INTENDED_USE = (
    "Scoring uploaded images for content moderation, per label, against thresholds a platform's "
    "policy sets, with uncertain images sent to human review. Not for decisions about people, and "
    "not as the only safeguard against illegal content."
)
NOT_ENOUGH = "not enough verdicts"


@dataclass(frozen=True)
class Notice:
    model: str
    source: str
    licence: str


@dataclass(frozen=True)
class LabelEvidence:
    """What reviewers' verdicts say about one label at its block threshold."""

    label: str
    labelled: int
    positives: int
    threshold: float | None
    precision: Rate
    recall: Rate

    @property
    def enough(self) -> bool:
        return self.labelled >= MIN_SAMPLE


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    generated_at: datetime
    components: dict[str, str]
    """component -> the version the card describes (itself, for a component's card)."""
    details: dict[str, Notice]
    """Per component, from THIRD_PARTY_NOTICES (the ensemble's own steps have none)."""
    labels: dict[str, tuple[str, str]]
    """label -> (what it is for, what its score is)."""
    out_of_scope: list[str]
    training: dict[str, HeadCard] = field(default_factory=dict)
    quality: list[LabelEvidence] = field(default_factory=list)
    quality_since: datetime | None = None
    quality_until: datetime | None = None
    caveats: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        plain = asdict(self)
        plain["training"] = {label: card.model_dump(mode="json") for label, card in self.training.items()}
        plain["quality"] = [
            {**asdict(e), "enough": e.enough, **({} if e.enough else {"precision": None, "recall": None})}
            for e in self.quality
        ]
        return plain

    def markdown(self) -> str:
        lines = [
            f"# Model card: {self.name} version {self.version}",
            "",
            f"Generated {self.generated_at:%Y-%m-%d %H:%M} UTC.",
            "",
        ]
        lines += ["## Model details", ""]
        lines += [
            f"- **{c}** version {v}: "
            + (
                f"{n.model.rstrip('.')}. Source: {n.source}. Licence: {n.licence}."
                if (n := self.details.get(c))
                else ""
            )
            for c, v in self.components.items()
        ]
        lines += ["", "## Intended use", "", INTENDED_USE, "", "| label | for | score |", "| --- | --- | --- |"]
        lines += [f"| {label} | {what} | {meaning} |" for label, (what, meaning) in self.labels.items()]
        lines += ["", "## Out of scope", "", "No label measures these harms:", ""]
        lines += [f"- {harm}" for harm in self.out_of_scope]
        if self.training:
            lines += ["", "## Training data", ""]
            for label, card in self.training.items():
                lines.append(
                    f"- **{label}**: {card.train.positives} positive and {card.train.negatives} negative reviewer "
                    f"verdicts from {card.window_start:%Y-%m-%d} to {card.window_end:%Y-%m-%d}, on the embedding "
                    f"of {card.embedding_model}; held out {card.held_out.positives} + {card.held_out.negatives}: "
                    f"precision {card.precision}, recall {card.recall} at {card.threshold:.2f}."
                )
        lines += ["", "## Quality from reviewers' verdicts", ""]
        period = f"{_day(self.quality_since, 'the start')} to {_day(self.quality_until, 'now')}"
        if not self.quality:
            lines.append(f"{NOT_ENOUGH.capitalize()}: none for this version ({period}).")
        else:
            lines += [
                f"At each label's block threshold, weighted by the audit sampling design; 95 % intervals; {period}.",
                "",
                "| label | verdicts (positive) | threshold | precision | recall |",
                "| --- | --- | --- | --- | --- |",
            ]
            for e in self.quality:
                shown = (
                    (str(e.precision), str(e.recall))
                    if e.enough
                    else (f"{NOT_ENOUGH} ({e.labelled} of {MIN_SAMPLE})",) * 2
                )
                threshold = "-" if e.threshold is None else f"{e.threshold:.2f}"
                lines.append(f"| {e.label} | {e.labelled} ({e.positives}) | {threshold} | {shown[0]} | {shown[1]} |")
        lines += ["", "## Caveats", ""]
        lines += [f"- {caveat}" for caveat in self.caveats]
        return "\n".join(lines) + "\n"


def _day(moment: datetime | None, unbounded: str) -> str:
    return unbounded if moment is None else f"{moment:%Y-%m-%d}"


def read_notices(text: str) -> dict[str, Notice]:
    """The table of THIRD_PARTY_NOTICES: component -> its model, source package and licence."""
    found = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[a-z0-9_]+", cells[0]):
            found[cells[0]] = Notice(model=cells[1], source=cells[2], licence=cells[3])
    return found


def caveats_of(taxonomy: Taxonomy, labels: list[str], learned: bool) -> list[str]:
    """What a reader must know to use the scores, read off the labels' own descriptions."""
    rules = [taxonomy.labels[label] for label in labels if label in taxonomy.labels]
    said = ["Scores of different components are not comparable: each label has thresholds of its own."]
    softmax = sorted({rule.component for rule in rules if "softmax" in rule.meaning})
    if softmax:
        said.append(
            f"{', '.join(softmax)}: scores are softmax probabilities over each model's own classes; they sum to "
            "1 across those classes, so one label's score is not an independent probability."
        )
    proxies = sorted(
        label for label in labels if label in taxonomy.labels and "proxy" in taxonomy.labels[label].description
    )
    if proxies:
        said.append(f"{', '.join(proxies)}: weak proxies from ImageNet object classes, not harm classifiers.")
    if learned:
        said.append("Learned labels come from one platform's reviewers: their verdicts' biases are the model's.")
    said.append(f"A figure needs {MIN_SAMPLE} verdicts or more; below that the card says '{NOT_ENOUGH}'.")
    return said


def component_versions(model_version: str) -> dict[str, str]:
    """``image_safety:1+nsfwjs:2+taxonomy:ab`` -> {component: version} (a decision's model version)."""
    return dict(part.partition(":")[::2] for part in model_version.split("+") if ":" in part)


def card_for(
    name: str,
    version: str,
    *,
    components: dict[str, str],
    taxonomy: Taxonomy,
    labels: list[str],
    notices: dict[str, Notice],
    heads: dict[str, HeadCard],
    quality: list[tuple[str, LabelEvidence]],
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> ModelCard:
    """The card of ``name`` at ``version``: a component (``components`` is itself) or an ensemble
    (``components`` its members at their serving versions). ``quality`` pairs each label's
    evidence with the decisions' model version; only decisions made by these versions count."""
    learned = set(labels) - set(taxonomy.labels)
    described = {
        label: (taxonomy.labels[label].description, taxonomy.labels[label].meaning)
        if label in taxonomy.labels
        else (
            "A label learned from reviewers' verdicts.",
            "The head's probability (logistic regression on the embedding).",
        )
        for label in labels
    }
    made_by_these: dict[str, LabelEvidence] = {}
    for model_version, evidence in quality:
        served = component_versions(model_version)
        if evidence.label in described and all(
            served.get(c) == v for c, v in components.items() if not c.startswith("taxonomy")
        ):
            # Several ensemble versions (another taxonomy, say) with these components: the best measured.
            known = made_by_these.get(evidence.label)
            if known is None or evidence.labelled > known.labelled:
                made_by_these[evidence.label] = evidence
    return ModelCard(
        name=name,
        version=version,
        generated_at=now,
        components=dict(components),
        details={c: notices[c] for c in components if c in notices},
        labels=described,
        out_of_scope=list(taxonomy.out_of_scope),
        training={label: card for label, card in heads.items() if label in described},
        quality=[made_by_these[label] for label in sorted(made_by_these)],
        quality_since=since,
        quality_until=until,
        caveats=caveats_of(taxonomy, labels, bool(learned)),
    )
