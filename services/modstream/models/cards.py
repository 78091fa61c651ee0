"""Model cards (Mitchell et al., 2019) for a served component or ensemble, from what the project
knows. Pure: the caller reads the files and the archive and passes them in.

The sections come from these sources:

- details and licence: THIRD_PARTY_NOTICES;
- intended use and the labels: the taxonomy;
- out of scope: the taxonomy's ``out_of_scope``;
- training data: a head's card;
- quality: reviewers' verdicts, with intervals and the period they cover;
- drift: each label's drift status, as the quality room's drift monitor has it (aggregated
  over tenants: a card names no tenant);
- caveats: read off each label's meaning (softmax scores, object-class proxies).

Where the verdicts are too few (``core.stats.MIN_SAMPLE``) the card says so, instead of
giving a number. A card records what it was made from (``MadeFrom``: the archive's snapshots
and how many verdicts they held), so a written card can be told apart from a newer one.
"""

import json
import re
from collections.abc import Sequence
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
    first: datetime | None = None
    last: datetime | None = None
    """When the first and the last decision with a verdict among them happened."""

    @property
    def enough(self) -> bool:
        return self.labelled >= MIN_SAMPLE


@dataclass(frozen=True)
class DriftRule:
    """PSI at or over ``alert`` makes a label drift (the tenant's audit rate rises); under
    ``calm`` it stops."""

    alert: float
    calm: float


@dataclass(frozen=True)
class DriftReading:
    """One tenant's drift of one label, as the drift monitor has it now."""

    tenant: str
    label: str
    drifting: bool
    since: datetime | None
    """The start of the window whose PSI made it drift (None: not drifting, or not recorded)."""
    psi: float | None
    window: datetime | None
    """The start of the newest window compared with the reference (None: none can be yet)."""


@dataclass(frozen=True)
class DriftEvidence:
    rule: DriftRule
    readings: list[tuple[str, DriftReading]]
    """Each paired with the model version of the decisions it tallies."""


@dataclass(frozen=True)
class LabelDrift:
    """One label's drift over the tenants whose decisions these versions made."""

    label: str
    tenants: int
    """Tenants with a reading (a window compared with the reference) or drifting."""
    drifting: int
    since: datetime | None
    """The earliest start among the drifting tenants."""
    psi: float | None
    """The highest PSI of the tenants' newest windows."""
    window: datetime | None
    """That window's start."""


@dataclass(frozen=True)
class MadeFrom:
    """What a card's figures were read from: each archive table's snapshot (every commit makes a
    new one) and how many decisions with a verdict the period held, over every model version."""

    snapshots: dict[str, int | None]
    verdicts: int


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
    quality_read: bool = True
    """False when the archive could not be read (then ``quality`` is empty)."""
    quality_since: datetime | None = None
    quality_until: datetime | None = None
    caveats: list[str] = field(default_factory=list)
    drift: list[LabelDrift] | None = None
    """One per label; None when the drift monitor's state was not read."""
    drift_rule: DriftRule | None = None
    made_from: MadeFrom | None = None
    unavailable: list[str] = field(default_factory=list)
    """What could not be read (the archive, the drift monitor's state), and why."""

    def to_dict(self) -> dict[str, Any]:
        plain = asdict(self)
        plain["training"] = {label: card.model_dump(mode="json") for label, card in self.training.items()}
        plain["quality"] = [
            {**asdict(e), "enough": e.enough, **({} if e.enough else {"precision": None, "recall": None})}
            for e in self.quality
        ]
        return plain

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str, indent=2) + "\n"

    def markdown(self) -> str:
        made = f"Generated {self.generated_at:%Y-%m-%d %H:%M} UTC"
        if self.made_from is not None:
            tables = ", ".join(f"{t} {'none' if s is None else s}" for t, s in self.made_from.snapshots.items())
            made += f" from the archive's snapshots ({tables}), {self.made_from.verdicts} decisions with a verdict"
        lines = [f"# Model card: {self.name} version {self.version}", "", f"{made}.", ""]
        if self.unavailable:
            lines += ["Not read, so missing from this card:", "", *(f"- {p}" for p in self.unavailable), ""]
        lines += ["## Model details", ""]
        for c, v in self.components.items():
            if n := self.details.get(c):
                lines.append(f"- **{c}** version {v}: {n.model.rstrip('.')}. Source: {n.source}. Licence: {n.licence}.")
            elif self.details:  # THIRD_PARTY_NOTICES was read and does not name it
                lines.append(f"- **{c}** version {v}: a step of this project's own (no third-party model).")
            else:
                lines.append(f"- **{c}** version {v}")
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
        if not self.quality_read:
            lines.append("Not read (the archive).")
        elif not self.quality:
            lines.append(f"{NOT_ENOUGH.capitalize()}: none for this version ({period}).")
        else:
            lines += [
                f"At each label's block threshold, weighted by the audit sampling design; 95 % intervals; "
                f"verdicts read from {period}; the period each row covers is that of the decisions they judged.",
                "",
                "| label | verdicts (positive) | threshold | precision | recall | period covered |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            for e in self.quality:
                shown = (
                    (_figure(e.precision), _figure(e.recall))
                    if e.enough
                    else (f"{NOT_ENOUGH} ({e.labelled} of {MIN_SAMPLE})",) * 2
                )
                threshold = "-" if e.threshold is None else f"{e.threshold:.2f}"
                covered = "-" if e.first is None or e.last is None else f"{e.first:%Y-%m-%d} to {e.last:%Y-%m-%d}"
                lines.append(
                    f"| {e.label} | {e.labelled} ({e.positives}) | {threshold} | {shown[0]} | {shown[1]} | {covered} |"
                )
        lines += ["", "## Drift", "", *self._drift_lines()]
        lines += ["", "## Caveats", ""]
        lines += [f"- {caveat}" for caveat in self.caveats]
        return "\n".join(lines) + "\n"

    def _drift_lines(self) -> list[str]:
        if self.drift is None or self.drift_rule is None:
            return ["Not read (the drift monitor's state)."]
        rule = self.drift_rule
        lines = [
            "Each tenant's scores of a label, window by window, against a reference (the first windows these "
            "versions served the tenant, or a pinned period): PSI over the score histogram. A label drifts from "
            f"PSI {rule.alert:.2f} until it is under {rule.calm:.2f}; meanwhile the tenant's audit sampling rate "
            "is raised.",
            "",
            "| label | status | since | PSI, newest window |",
            "| --- | --- | --- | --- |",
        ]
        for d in self.drift:
            if not d.tenants:
                lines.append(f"| {d.label} | no reading yet (too few decisions to compare) | - | - |")
                continue
            status = (
                f"drifting for {d.drifting} of {_tenants(d.tenants)}"
                if d.drifting
                else f"not drifting ({_tenants(d.tenants)})"
            )
            since = "-" if not d.drifting else "not recorded" if d.since is None else f"{d.since:%Y-%m-%d %H:%M} UTC"
            psi = "-" if d.psi is None or d.window is None else f"{d.psi:.3f} ({d.window:%Y-%m-%d %H:%M} UTC)"
            lines.append(f"| {d.label} | {status} | {since} | {psi} |")
        return lines


def _figure(found: Rate) -> str:
    """A rate with its interval, or "not enough verdicts" when too few stand behind it: its
    effective n (Kish: weighted verdicts; for recall, those that gave the label) under the minimum."""
    return str(found) if found.value is not None else f"{NOT_ENOUGH} (effective n={found.n:.0f} of {MIN_SAMPLE})"


def _tenants(count: int) -> str:
    return f"{count} tenant{'' if count == 1 else 's'}"


def _day(moment: datetime | None, unbounded: str) -> str:
    return unbounded if moment is None else f"{moment:%Y-%m-%d}"


def made_by(components: dict[str, str], model_version: str) -> bool:
    """Whether decisions of ``model_version`` were made by these component versions (whichever
    taxonomy file: the labels a card describes are matched by name)."""
    served = component_versions(model_version)
    return all(served.get(c) == v for c, v in components.items() if not c.startswith("taxonomy"))


def label_drift(label: str, readings: Sequence[DriftReading]) -> LabelDrift:
    """One label's readings, over tenants: drifting while any tenant's drifts."""
    read = [r for r in readings if r.psi is not None and r.window is not None]
    drifting = [r for r in readings if r.drifting]
    newest = max(read, key=lambda r: (r.psi, r.window), default=None)
    starts = [r.since for r in drifting if r.since is not None]
    return LabelDrift(
        label=label,
        tenants=len({r.tenant for r in [*read, *drifting]}),
        drifting=len({r.tenant for r in drifting}),
        since=min(starts, default=None),
        psi=None if newest is None else newest.psi,
        window=None if newest is None else newest.window,
    )


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
    quality: list[tuple[str, LabelEvidence]] | None,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    drift: DriftEvidence | None = None,
    made_from: MadeFrom | None = None,
    unavailable: Sequence[str] = (),
) -> ModelCard:
    """The card of ``name`` at ``version``: a component (``components`` is itself) or an ensemble
    (``components`` its members at their serving versions). ``quality`` pairs each label's
    evidence, and ``drift`` each reading, with the decisions' model version; only decisions made
    by these versions count. None: not read."""
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
    for model_version, evidence in quality or []:
        if evidence.label in described and made_by(components, model_version):
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
        quality_read=quality is not None,
        quality_since=since,
        quality_until=until,
        caveats=caveats_of(taxonomy, labels, bool(learned)),
        drift=None
        if drift is None
        else [
            label_drift(label, [r for v, r in drift.readings if r.label == label and made_by(components, v)])
            for label in described
        ],
        drift_rule=None if drift is None else drift.rule,
        made_from=made_from,
        unavailable=list(unavailable),
    )
