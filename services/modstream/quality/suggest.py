"""Thresholds for one label, as ``modstream quality suggest`` asks for them: advice from the
weighted labelled sample of a period, backtested over the period's archived scores.

A label the policy does not trigger on yet (under ``ignore``, or scored by the model and
named nowhere) gets both thresholds from the targets and a rule of its own, in a queue
checked as the policy checks queues; its verdicts count from its definition in the label
registry (or the period's ``since``, whichever is later).

Quality imports no other room: the policy in force and the policy room's two operations on
it come in as ``Policies``, the archive and the label registry as ``Sources``; the composer
(``cli/quality.py``) hands them over, and writes the proposal with the policy room.
"""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import duckdb
import numpy as np
from pydantic import TypeAdapter, ValidationError

from modstream.core.events import QueueName, Thresholds
from modstream.core.evidence import Period, automatic_scores, sampled_verdicts
from modstream.core.label_since import CountingFrom, counting_from, definition_times
from modstream.core.settings import Settings
from modstream.quality.advice import Advice, Backtest, Decide, advise, backtest

_QUEUE: TypeAdapter[str] = TypeAdapter(QueueName)


class Refused(ValueError):
    """The request does not fit the policy: a new label without a recall target or with a
    queue the policy would refuse, ``queue`` for a label that has a rule, or a label nothing
    of the period scores. (``advice.NoAdvice``: the request fits, the sample cannot tell.)"""


class Rule(Protocol):
    @property
    def queue(self) -> str: ...


class PolicyInForce(Protocol):
    """What a suggestion reads of the tenant's policy (``policy.engine.Policy`` fits by shape)."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, Rule]: ...

    @property
    def ignore(self) -> Sequence[str]: ...

    def thresholds(self) -> Mapping[str, Thresholds]: ...


P = TypeVar("P", bound=PolicyInForce)


@dataclass(frozen=True)
class Policies(Generic[P]):
    """The tenant's policy in force, and how the policy room decides under it
    (``policy.proposal.outcome_under``) and changes one label's rule
    (``policy.proposal.with_thresholds``)."""

    in_force: P
    outcome_under: Callable[[P], Decide]
    with_thresholds: Callable[[P, str, Thresholds, str | None], P]


@dataclass(frozen=True)
class Sources:
    archive: Callable[[Period], duckdb.DuckDBPyConnection]
    """The archive of the days a period's evidence lies in (``Period.days``)."""
    defined_at: Callable[[str], datetime | None]
    """When the label registry says a label was defined (None: it does not hold it)."""


def registry(settings: Settings, warn: Callable[[str], None]) -> Callable[[str], datetime | None]:
    """``Sources.defined_at`` from the label registry in Redis; when Redis does not answer,
    ``warn`` says so and the label's definition time is unknown."""

    def defined_at(label: str) -> datetime | None:
        return asyncio.run(definition_times(settings, [label], warn)).get(label)

    return defined_at


@dataclass(frozen=True)
class Request:
    label: str
    target_precision: float
    """``block_at``: precision at least this."""
    target_recall: float | None = None
    """``review_at``: recall at least this (None: keep the one in force; a new label needs one)."""
    queue: str | None = None
    """The queue of a new label's rule (None: the label with dots as dashes)."""
    period: Period = field(default_factory=Period)


@dataclass(frozen=True)
class NewRule:
    """The rule a label the policy does not trigger on yet would get."""

    queue: str
    counting: CountingFrom
    """From when its verdicts count."""


@dataclass(frozen=True)
class Suggestion:
    request: Request
    policy_id: str
    policy_version: str
    ignored: bool
    """The label is under the policy's ``ignore``."""
    new_rule: NewRule | None
    """None: the policy has a rule for the label, whose thresholds the advice moves."""
    decisions: int
    """Decisions in the sample, labelled or not."""
    advice: Advice
    backtest: Backtest

    def why(self, at: datetime) -> str:
        """What a written proposal says of itself (``at``: when it was made)."""
        ask, label, advice, moved = self.request, self.request.label, self.advice, self.backtest
        options = f" --target-recall {ask.target_recall}" if ask.target_recall is not None else ""
        options += f" --queue {self.new_rule.queue}" if self.new_rule else ""
        moving = f"{label} moves from ignore to labels (queue {self.queue})\n" if self.ignored else ""
        counted = f"counting for {label}: {self.new_rule.counting}\n" if self.new_rule else ""
        tenant = ask.period.tenant
        return (
            f"proposed by `modstream quality suggest --label {label} --target-precision {ask.target_precision}"
            f"{options}` at {at:%Y-%m-%d %H:%M} UTC\n{moving}{counted}"
            f"from {advice.labelled} labelled decisions "
            f"({advice.positives} with {label}); backtest: {moved.changed} of {moved.decisions} decisions change\n"
            f"apply by moving this file to {'tenants/' + tenant + '.yaml' if tenant else 'default.yaml'}"
        )

    @property
    def queue(self) -> str | None:
        """The new rule's queue (None: the label keeps its rule's)."""
        return self.new_rule.queue if self.new_rule else None


def suggest(request: Request, policies: Policies[P], sources: Sources, *, note: Callable[[str], None]) -> Suggestion:
    """Advice for the request's label and its backtest; ``note`` is told of a new rule before the
    archive is read. ``Refused`` when the request does not fit the policy, ``NoAdvice`` when the
    labelled sample cannot tell."""
    policy, label = policies.in_force, request.label
    new_rule = None
    if label not in policy.labels:
        queue = _new_rule_queue(request, policy.id)
        counting = counting_from(sources.defined_at(label), request.period.since)
        where = "under ignore" if label in policy.ignore else "not named"
        note(f"{label} is {where} in policy {policy.id}: a new rule in queue {queue}; counting {counting}")
        new_rule = NewRule(queue, counting)
        request = replace(request, period=replace(request.period, since=counting.at))
    elif request.queue is not None:
        raise Refused(
            f"{label!r} already has a rule in policy {policy.id} (queue {policy.labels[label].queue}): "
            f"--queue is for a label the policy does not trigger on yet; edit the policy file to move it"
        )
    period = request.period
    with sources.archive(period) as archive:
        sample = sampled_verdicts(archive, period, extra_labels=[label] if new_rule else ())
        scores, days = automatic_scores(archive, period)
    if new_rule:
        if not np.any(~np.isnan(sample.labels[label].score)):
            raise Refused(_unscored(label, policy))
        # Decisions from before the model scored the label would all look changed: under the
        # proposal its missing score sends them to review (missing_label). Only the others count.
        scores = [s for s in scores if label in s]
    current = None if new_rule else policy.thresholds()[label]
    advice = advise(sample, label, current, request.target_precision, request.target_recall)
    proposal = policies.with_thresholds(policy, label, advice.proposed, new_rule.queue if new_rule else None)
    moved = backtest(scores, days, policies.outcome_under(policy), policies.outcome_under(proposal))
    return Suggestion(
        request=request,
        policy_id=policy.id,
        policy_version=policy.version,
        ignored=label in policy.ignore,
        new_rule=new_rule,
        decisions=len(sample),
        advice=advice,
        backtest=moved,
    )


def _new_rule_queue(request: Request, policy_id: str) -> str:
    """The queue of a new label's rule, checked as the policy checks it; a new label also needs
    a recall target (it has no review_at in force to keep)."""
    label, queue = request.label, request.queue
    if request.target_recall is None:
        raise Refused(
            f"{label!r} is not triggered by policy {policy_id} yet: give --target-recall "
            "(there is no review_at in force to keep)"
        )
    chosen = queue if queue is not None else label.replace(".", "-")
    try:
        _QUEUE.validate_python(chosen)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        hint = "" if queue is not None else f" (the default from the label {label!r}: give one with --queue)"
        raise Refused(f"queue {chosen!r} refused: {problem}{hint}") from exc
    return chosen


def _unscored(label: str, policy: PolicyInForce) -> str:
    if label in policy.ignore:
        return f"no archived decision of the period scores {label!r} (ignored by {policy.id})"
    known = f"its labels: {', '.join(policy.labels)}; ignored: {', '.join(policy.ignore) or '-'}"
    return f"policy {policy.id} has no rule for {label!r}, and no archived decision of the period scores it ({known})"
