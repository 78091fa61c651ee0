"""The decision rule: label scores + a policy -> allow, review or block, and why. Pure.

``block`` if any label reaches its ``block_at``; else ``review`` if any reaches its
``review_at``; else ``allow`` (reaching means score >= threshold). A share of automatic
``allow`` and ``block`` decisions is also sent to review as an audit sample, chosen by
a hash of the content id, so the same item is always sampled or never.
"""

from collections.abc import Collection
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modstream.core.appeals import AppealRules
from modstream.core.events import THRESHOLD, BankName, Outcome, QueueName, TextReading, Thresholds, Trigger
from modstream.core.retention import Retention
from modstream.core.review_rules import ReviewRules
from modstream.core.sampling import in_sample
from modstream.policy.statements import StatementRules, unmapped_labels
from modstream.policy.text import TextRules, TextVerdict, match_text

AUDIT_QUEUE = "audit"
# The label a model that reads text answers with (the full profile's ocr step): text rules'
# labels are scored only where it is.
TEXT_READ = "text.present"
LABELS_CHANGED_QUEUE = "labels-changed"


class LabelRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    review_at: float = Field(ge=0.0, le=1.0)
    block_at: float = Field(ge=0.0, le=1.0)
    queue: QueueName = "default"

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.review_at > self.block_at:
            raise ValueError(f"review_at ({self.review_at}) is above block_at ({self.block_at})")
        return self


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    audit_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    double_review_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="share of review jobs also given to a second, blind reviewer"
    )
    saliency_on_block: bool = Field(
        default=False,
        description="make occlusion maps of every automatic block by the models that decided it, and keep them "
        "beside the decision (50 copies of the image scored per block: docs/benchmark.md)",
    )
    labels: dict[str, LabelRule]
    ignore: list[str] = Field(default_factory=list, description="model labels that never trigger, on purpose")
    bank_on_remove: dict[str, BankName] = Field(
        default_factory=dict, description="label -> hash bank: a reviewer's remove naming the label banks the image"
    )

    appeals: AppealRules = Field(default_factory=AppealRules, description="how restrictions are appealed")
    review: ReviewRules = Field(
        default_factory=ReviewRules, description="severe labels, due dates and reviewers' exposure limits"
    )
    retention: Retention = Field(default_factory=Retention, description="how long each kind of data is kept")
    statements: StatementRules | None = Field(
        default=None, description="statements of reasons for its restrictions (DSA Art. 17); none: not produced"
    )
    text: TextRules = Field(
        default_factory=lambda: TextRules({}),
        description="text label -> the terms, patterns and detectors that score it",
    )

    @model_validator(mode="after")
    def _banked_labels_known(self) -> Self:
        unknown = sorted(set(self.bank_on_remove) - self.known_labels())
        if unknown:
            raise ValueError(f"bank_on_remove names labels the policy does not have: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _severe_labels_known(self) -> Self:
        if unknown := sorted(self.review.severe - self.known_labels()):
            raise ValueError(f"review.severe names labels the policy does not have: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _text_labels_decided(self) -> Self:
        if TEXT_READ in self.text.labels():
            raise ValueError(f"text: {TEXT_READ} is the model's label (whether text was read), not a text rule's")
        if undecided := sorted(self.text.labels() - self.known_labels()):
            raise ValueError(
                f"text: {', '.join(undecided)} has text rules but no thresholds under labels (nor is it under ignore): "
                "a text label's score decides like any label's"
            )
        return self

    @model_validator(mode="after")
    def _decisions_kept_while_appealable(self) -> Self:
        days = self.retention.decisions_days
        if days is not None and days < self.appeals.window_days:
            raise ValueError(
                f"retention.decisions_days {days:g} is shorter than the appeal window ({self.appeals.window_days:g} "
                "days): an appeal is heard against the decision on record"
            )
        return self

    @model_validator(mode="after")
    def _every_blocking_label_reported(self) -> Self:
        if self.statements is None:
            return self
        if missing := unmapped_labels(self.statements, set(self.labels)):
            raise ValueError(
                f"statements.labels: {', '.join(missing)} can block (a score reaching block_at, or a reviewer's "
                "remove) but has no category to report it under"
            )
        if unknown := sorted(set(self.statements.labels) - self.known_labels()):
            raise ValueError(f"statements.labels names labels the policy does not have: {', '.join(unknown)}")
        return self

    def known_labels(self) -> set[str]:
        return set(self.labels) | set(self.ignore)

    def labels_given(self, model_labels: Collection[str]) -> set[str]:
        """The labels this policy sees when the model answers ``model_labels``: those, and its
        text labels when the model reads text (answers ``text.present``): the worker scores
        them from the reading."""
        return set(model_labels) | (self.text.labels() if TEXT_READ in model_labels else set())

    def audited_at_least(self, rate: float) -> "Policy":
        """This policy with its audit sample rate raised to ``rate`` (never lowered)."""
        if rate <= self.audit_sample_rate:
            return self
        return self.model_copy(update={"audit_sample_rate": min(rate, 1.0)})

    def thresholds(self) -> dict[str, Thresholds]:
        return {label: Thresholds(review_at=r.review_at, block_at=r.block_at) for label, r in self.labels.items()}


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision: Outcome
    triggered: list[Trigger]
    reasons: list[str]
    review_queue: str | None = Field(description="where a person must look at it; None when nobody must")
    audit_sample: bool = Field(default=False, description="sent to review only as an audit sample")


def label_scores(
    model_scores: dict[str, float], reading: TextReading | None, policy: Policy
) -> tuple[dict[str, float], TextVerdict]:
    """What the policy decides on: the model's scores and its text labels' scores, which its
    text rules make from what was read (none when nothing was read: they are then missing),
    and where those rules matched."""
    words = match_text(reading, policy.text)
    return model_scores | words.scores, words


def evaluate(scores: dict[str, float], policy: Policy, content_id: str) -> Verdict:
    triggered: list[Trigger] = []
    for label, rule in policy.labels.items():
        score = scores.get(label)
        if score is None:
            continue
        if score >= rule.block_at:
            triggered.append(Trigger(label=label, score=score, threshold=rule.block_at, level="block"))
        elif score >= rule.review_at:
            triggered.append(Trigger(label=label, score=score, threshold=rule.review_at, level="review"))
    triggered.sort(key=lambda t: t.score, reverse=True)
    blocking = [t for t in triggered if t.level == "block"]
    if blocking:
        decision, triggered = Outcome.BLOCK, blocking
    else:
        decision = Outcome.REVIEW if triggered else Outcome.ALLOW
    reasons = [THRESHOLD] if triggered else []
    queue = policy.labels[triggered[0].label].queue if decision is Outcome.REVIEW else None
    drift = label_drift(scores, policy)
    if drift and decision is not Outcome.BLOCK:
        # The model and the policy disagree on the labels: a person decides until the
        # policy is updated (a block from the labels both know still stands).
        decision, reasons, queue = Outcome.REVIEW, [*reasons, *drift], queue or LABELS_CHANGED_QUEUE
    elif queue is None and in_audit_sample(content_id, policy.audit_sample_rate):
        reasons.append("audit_sample")
        queue = AUDIT_QUEUE
    audit_sample = "audit_sample" in reasons
    return Verdict(
        decision=decision, triggered=triggered, reasons=reasons, review_queue=queue, audit_sample=audit_sample
    )


def label_drift(scores: dict[str, float], policy: Policy) -> list[str]:
    """Reasons the model's labels and the policy's do not match: labels it does not know,
    and labels it has rules for that the model no longer scores."""
    unknown = sorted(set(scores) - policy.known_labels())
    missing = sorted(set(policy.labels) - set(scores))
    return [f"unknown_label:{label}" for label in unknown] + [f"missing_label:{label}" for label in missing]


def in_audit_sample(content_id: str, rate: float) -> bool:
    """Whether this content falls in the audit sample: stable across runs and workers."""
    return in_sample(content_id, rate)
