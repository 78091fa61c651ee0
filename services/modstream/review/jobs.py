"""Review jobs, leases and verdicts: plain values, the queue's ordering rule and which jobs
get a second review, no I/O."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from modstream.core.events import (
    DECIDING_JOB_KINDS,
    TEXT_MAX_CHARS,
    BankMatch,
    BankName,
    ImageHashes,
    JobKind,
    ModelRef,
    TextMatch,
    TextReading,
    Thresholds,
    Trigger,
)
from modstream.core.review_rules import ReviewRules, Severity
from modstream.core.sampling import in_sample

SECOND_REVIEW_SUFFIX = ":second"
LABELLING_INFIX = ":label:"


class Verdict(StrEnum):
    APPROVE = "approve"
    REMOVE = "remove"


APPEAL_SUFFIX = ":appeal"


class AppealCase(BaseModel):
    """What an appeal job shows beside the image: who appeals, why, what they appeal, by when."""

    model_config = ConfigDict(frozen=True)

    appeal_id: str
    appellant: str
    reason: str
    restricted_by: str | None = Field(description="the reviewer who took the decision appealed; none: automatic")
    restriction_source: str
    restricted_at: datetime
    statement_puid: str | None = None
    lodged_at: datetime
    due_at: datetime


class ReviewJob(BaseModel):
    """One image waiting for (or under) human review. Its id is the upload's event id; a
    second review's is that id with ``:second`` added, a labelling job's ``:label:<label>``."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    kind: JobKind = "threshold_review"
    queue: str
    decision_id: str
    tenant: str
    bucket: str
    key: str
    scores: dict[str, float]
    triggered: list[Trigger]
    reasons: list[str]
    model: ModelRef | None
    hashes: ImageHashes | None = None
    bank_match: BankMatch | None = None
    text: TextReading | None = None
    text_matches: list[TextMatch] = Field(default_factory=list)
    policy_id: str
    policy_version: str
    thresholds: dict[str, Thresholds] = Field(default_factory=dict)
    double_review_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    bank_on_remove: dict[str, BankName] = Field(default_factory=dict)
    uploaded_at: datetime
    enqueued_at: datetime
    severity: Severity = Field(default="standard", description="the tenant's severity of its triggering labels")
    due_at: datetime | None = Field(default=None, description="by when a person should first look; none: the defaults")
    metadata: dict[str, str] = Field(default_factory=dict)
    # The upload's trace (W3C headers of the review request): the verdict continues it.
    trace_context: dict[str, str] = Field(default_factory=dict)
    appeal: AppealCase | None = None

    @property
    def event_id(self) -> str:
        if self.kind == "second_review":
            return self.job_id.removesuffix(SECOND_REVIEW_SUFFIX)
        if self.kind == "appeal":
            return self.job_id.removesuffix(APPEAL_SUFFIX)
        return self.job_id.partition(LABELLING_INFIX)[0] if self.kind == "labelling" else self.job_id

    @property
    def labelling_for(self) -> str | None:
        """The label a labelling job was seeded for."""
        return self.job_id.partition(LABELLING_INFIX)[2] if self.kind == "labelling" else None

    @property
    def decides(self) -> bool:
        """Whether its verdict publishes the image's final decision."""
        return self.kind in DECIDING_JOB_KINDS

    @property
    def wants_second_review(self) -> bool:
        """Whether a verdict on this job calls for a second one (only on a job that decides)."""
        return self.decides and chosen_for_second_review(self.event_id, self.double_review_rate)

    def second_review(self, enqueued_at: datetime) -> "ReviewJob":
        """The same image, scores and reasons for another reviewer (due as long after queueing as
        the first): nothing of the first verdict is in a job, so the second reviewer cannot see it."""
        update = {
            "job_id": self.event_id + SECOND_REVIEW_SUFFIX,
            "kind": "second_review",
            "enqueued_at": enqueued_at,
            "due_at": enqueued_at + (self.due - self.enqueued_at),
        }
        return self.model_copy(update=update)

    def under(self, rules: ReviewRules) -> "ReviewJob":
        """The job with its tenant's severity (of the labels that triggered it) and due date
        (an appeal's is the appeal's own)."""
        severity = rules.severity_of(self.labels_triggered)
        due = self.appeal.due_at if self.appeal is not None else rules.due_at(self.queue, severity, self.enqueued_at)
        return self.model_copy(update={"severity": severity, "due_at": due})

    @property
    def due(self) -> datetime:
        """By when a person should first look: its due date, or the default rules' for its severity."""
        return self.due_at or ReviewRules().due_at(self.queue, self.severity, self.enqueued_at)

    @property
    def labels_offered(self) -> list[str]:
        """The labels a reviewer answers for: the policy's (its text labels among them), and any
        that triggered or that a text rule matched (a match names its label even when the policy
        in force no longer has it; a text bank's match names a bank, not a label)."""
        offered = set(self.thresholds) or set(self.scores)
        matched = {m.label for m in self.text_matches if not m.banked}
        return sorted(offered | {t.label for t in self.triggered} | matched)

    @property
    def labels_triggered(self) -> list[str]:
        return sorted({t.label for t in self.triggered})


class Lease(BaseModel):
    model_config = ConfigDict(frozen=True)

    job_id: str
    reviewer: str
    claimed_at: datetime
    expires_at: datetime
    first_claim: bool = Field(default=False, description="the job's first claim: its first look by a person")


class QueueStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    pending: int
    in_review: int
    oldest_age_seconds: float | None
    next_due_in_seconds: float | None = Field(default=None, description="negative: the first pending job is past due")
    past_due: int = Field(default=0, description="pending jobs past their due date")


class VerdictInput(BaseModel):
    """What a reviewer decided about a job, and every label that applies to the image (maybe none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict
    labels: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(max_length=100)
    note: str | None = Field(default=None, max_length=2000)
    add_to_bank: BankName | None = Field(default=None, description="on a remove: put the image's hashes in this bank")
    phrase: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX_CHARS,
        description="on a remove: a phrase of the image's recognised text, for the banks the policy's "
        "bank_on_remove names for the labels given",
    )

    @model_validator(mode="after")
    def _bank_on_remove(self) -> "VerdictInput":
        if self.verdict is not Verdict.REMOVE:
            if self.add_to_bank is not None:
                raise ValueError("only a remove adds the image to a bank")
            if self.phrase is not None:
                raise ValueError("only a remove adds a phrase of the image's text to a bank")
        return self


def chosen_for_second_review(event_id: str, rate: float) -> bool:
    """Whether an upload's review gets a second, blind one: a stable ``rate`` share of event ids.

    Hashed with a prefix so that the choice is independent of the audit sample (a hash of the
    bare id): audit samples are double-reviewed at the same rate as other jobs.
    """
    return in_sample(f"double:{event_id}", rate)
