"""How a tenant's images are reviewed, the rules: a tenant's ``review`` policy section (which
labels are severe, by when a person must first look, how much severe content one reviewer may
be shown). Pure.

Severity is a property of what an image may show, so it follows its labels: a job is severe
when any label that sent it to review is one of the tenant's ``severe`` labels.

Due dates make the queue's order: every job is due ``due`` after it was queued, by its severity
(and queue), and claims serve the job due soonest. That is severity with an ageing term: a
severe job goes first only over standard jobs queued less than the difference of the two
targets before it (23 hours by default), so no flood of severe jobs starves the rest.

Gold items (``core/gold.py``) measure reviewers: a share of claims serves an item whose answer an
admin set, looking like any job; its verdict publishes nothing and is judged against the answer.

Exposure limits protect reviewers: a daily cap of seconds spent looking at severe images
unblurred, and a break after so many severe images in a row. They are enforced where jobs are
handed out (``review/exposure.py``), per tenant: a tenant's limits decide whether its severe
jobs may still go to a reviewer, whatever other tenants' images that person saw.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from modstream.core.events import QueueName

Severity = Literal["severe", "standard"]
SEVERITIES: tuple[Severity, ...] = ("severe", "standard")
# YouTube's cap for its moderators of violent extremism, 2018: four hours a day.
DEFAULT_SEVERE_HOURS_PER_DAY = 4.0


class DueTargets(BaseModel):
    """Hours from a job's queueing to its first review, by severity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severe_hours: float = Field(default=1.0, gt=0.0, le=24 * 31)
    standard_hours: float = Field(default=24.0, gt=0.0, le=24 * 31)

    def within(self, severity: Severity) -> timedelta:
        return timedelta(hours=self.severe_hours if severity == "severe" else self.standard_hours)


class ExposureLimits(BaseModel):
    """How much of a tenant's severe content one reviewer may be shown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severe_unblurred_hours_per_day: float = Field(
        default=DEFAULT_SEVERE_HOURS_PER_DAY,
        ge=0.0,
        le=24.0,
        description="seconds looking at severe images unblurred (any tenant's) in a UTC day, above which no more "
        "severe jobs of this tenant go to that reviewer that day",
    )
    break_after_severe: int = Field(
        default=20, ge=1, le=10_000, description="severe images in a row after which a reviewer must take a break"
    )
    break_minutes: float = Field(default=15.0, ge=0.0, le=24 * 60)

    @property
    def severe_unblurred_seconds(self) -> float:
        return self.severe_unblurred_hours_per_day * 3600


class GoldRules(BaseModel):
    """Gold items in reviewers' streams, and when a reviewer's accuracy on them is too low."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(default=0.02, ge=0.0, le=1.0, description="share of claims that serve a gold item")
    queues: dict[QueueName, float] = Field(default_factory=dict, description="queue -> its own rate")
    min_accuracy: float = Field(
        default=0.8, ge=0.0, le=1.0, description="a reviewer's share of right verdicts below which an alert fires"
    )
    min_answers: int = Field(default=20, ge=1, description="gold answers a reviewer needs before the alert can fire")

    def rate_of(self, queue: str) -> float:
        return self.queues.get(queue, self.rate)


class ReviewRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    severe: frozenset[str] = Field(
        default=frozenset(), description="labels whose images are severe: due sooner, and counted against limits"
    )
    due: DueTargets = Field(default_factory=DueTargets)
    queues: dict[QueueName, DueTargets] = Field(
        default_factory=dict, description="queue -> its own due targets (others: ``due``)"
    )
    exposure: ExposureLimits = Field(default_factory=ExposureLimits)
    gold: GoldRules = Field(default_factory=GoldRules)

    def severity_of(self, labels: Iterable[str]) -> Severity:
        """A job's severity from the labels that sent it to review."""
        return "severe" if any(label in self.severe for label in labels) else "standard"

    def due_at(self, queue: str, severity: Severity, queued_at: datetime) -> datetime:
        return queued_at + self.queues.get(queue, self.due).within(severity)


class RulesByTenant(Protocol):
    """Each tenant's review section, as a process that serves every tenant reads it (the
    dashboard passes the policies' live view): a tenant without a file of its own has the
    default's, which ``""`` names."""

    def __call__(self, tenant: str) -> ReviewRules: ...

    def tenants(self) -> list[str]:
        """The tenants with a policy file of their own."""
        ...


@dataclass(frozen=True)
class SameForAll:
    """One review section for every tenant (tests, and a dashboard without policy files)."""

    rules: ReviewRules = field(default_factory=ReviewRules)

    def __call__(self, tenant: str) -> ReviewRules:
        return self.rules

    def tenants(self) -> list[str]:
        return []
