"""The decision rule: label scores + a policy -> allow, review or block, and why. Pure.

``block`` if any label reaches its ``block_at``; else ``review`` if any reaches its
``review_at``; else ``allow`` (reaching means score >= threshold). A share of automatic
``allow`` and ``block`` decisions is also sent to review as an audit sample, chosen by
a hash of the content id, so the same item is always sampled or never.
"""

import hashlib
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modstream.core.events import Outcome, Trigger

AUDIT_QUEUE = "audit"


class LabelRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    review_at: float = Field(ge=0.0, le=1.0)
    block_at: float = Field(ge=0.0, le=1.0)
    queue: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")

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
    labels: dict[str, LabelRule]


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision: Outcome
    triggered: list[Trigger]
    reasons: list[str]
    review_queue: str | None = Field(description="where a person must look at it; None when nobody must")


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
    reasons = ["threshold"] if triggered else []
    queue = policy.labels[triggered[0].label].queue if decision is Outcome.REVIEW else None
    if queue is None and in_audit_sample(content_id, policy.audit_sample_rate):
        reasons.append("audit_sample")
        queue = AUDIT_QUEUE
    return Verdict(decision=decision, triggered=triggered, reasons=reasons, review_queue=queue)


def in_audit_sample(content_id: str, rate: float) -> bool:
    """Whether this content falls in the audit sample: stable across runs and workers."""
    if rate <= 0.0:
        return False
    point = int.from_bytes(hashlib.sha256(content_id.encode()).digest()[:8], "big") / 2**64
    return point < rate
