"""Appeals (DSA Art. 20), the rules: a tenant's ``appeals`` policy section (how long a
restriction can be appealed, where appeals wait, by when a person must decide them) and
whether an appeal can be heard. Pure.

Only a restriction (a block) can be appealed, once per decision, within the window counted
from the decision. An appeal naming an event of another tenant is told what an appeal on an
unknown event is told, so that tenants learn nothing of each other.
"""

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from modstream.core.events import AppealLodged, AppealRefusal, ModerationDecision, Outcome, QueueName

MIN_WINDOW_DAYS = 183  # Art. 20(1): "for a period of at least six months"


class AppealRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    window_days: float = Field(
        default=MIN_WINDOW_DAYS, ge=MIN_WINDOW_DAYS, description="days a restriction can be appealed"
    )
    due_working_days: int = Field(default=3, ge=1, le=60, description="working days (Monday to Friday) to decide one")
    queue: QueueName = "appeals"
    queues: dict[str, QueueName] = Field(
        default_factory=dict,
        description="label -> queue: an appeal of a restriction for that label waits there (people who know it)",
    )

    def queue_for(self, restriction: ModerationDecision) -> str:
        """Where an appeal of ``restriction`` waits: the queue of the foremost of its labels that
        has one (``labels_for``), else ``queue``."""
        return next((self.queues[label] for label in restriction.labels_for() if label in self.queues), self.queue)

    def open_until(self, restricted_at: datetime) -> datetime:
        return restricted_at + timedelta(days=self.window_days)

    def due(self, lodged_at: datetime) -> datetime:
        """``due_working_days`` working days after ``lodged_at``: weekends do not count."""
        due, left = lodged_at, self.due_working_days
        while left:
            due += timedelta(days=1)
            if due.weekday() < 5:
                left -= 1
        return due


def refusal(
    appeal: AppealLodged, restriction: ModerationDecision | None, rules: AppealRules, now: datetime
) -> tuple[AppealRefusal, str] | None:
    """Why ``appeal`` cannot be heard, given the restriction on record for its event; None: it can."""
    if restriction is None or restriction.tenant != appeal.tenant or restriction.decision is not Outcome.BLOCK:
        return AppealRefusal.NO_RESTRICTION, (
            f"no restriction of event {appeal.event_id} is on record: it was never restricted, the "
            "restriction was lifted since, or the event is unknown"
        )
    if now > rules.open_until(restriction.occurred_at):
        return AppealRefusal.OUT_OF_TIME, (
            f"the restriction of {restriction.occurred_at:%Y-%m-%d} could be appealed for "
            f"{rules.window_days:g} days, until {rules.open_until(restriction.occurred_at):%Y-%m-%d}"
        )
    return None
