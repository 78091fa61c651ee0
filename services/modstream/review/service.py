"""What reviewers do, as one service: claim, skip, decide, and what admins read.

Every action lands in the audit log. A verdict becomes a final ``moderation.decision``
(``source: human``) and a ``review.verdict`` event, both published before the job is
closed, while the reviewer's lease is held (and extended for the publish): a crash
in between leaves the job open to be decided again, never a lost verdict.

Double review: a verdict on a job chosen for it (``ReviewJob.wants_second_review``) also
queues a ``second_review`` job of the same image, which its first reviewer can never claim,
before the first job closes (its id is fixed, so a retried verdict queues no other). A
second review's verdict is only a ``review.verdict`` (no ``human_decision_id``): the first
verdict stays the final decision, and the two measure how much reviewers agree.
"""

import logging
import random
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from opentelemetry import propagate

from modstream.core import metrics
from modstream.core.appeals import AppealRules, refusal
from modstream.core.events import (
    APPEAL_OVERTURNED,
    AppealLodged,
    AppealOutcome,
    AppealRefusal,
    BankEntry,
    ModerationDecision,
    Outcome,
    Record,
    ReviewVerdict,
    entry_key,
    new_id,
)
from modstream.core.gold import VERDICT, GoldAnswer, judged
from modstream.core.kafka import KafkaPublisher, producer_options
from modstream.core.labels import LabelDefinition, LabelRegistry, label_definition
from modstream.core.review_rules import RulesByTenant, SameForAll
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.core.text import fold, fold_term
from modstream.core.tracing import inject_headers, tracer
from modstream.review.appeals import AppealBook, appeal_job, kept_for
from modstream.review.audit import AuditEntry, AuditLog
from modstream.review.exposure import Exposure, ExposureBook, OnBreak, break_starts, refusals
from modstream.review.gold import GoldBook, GoldItem
from modstream.review.jobs import Lease, QueueStats, ReviewJob, Verdict, VerdictInput
from modstream.review.queue import LeaseLost, ReviewQueues, SevereRefused
from modstream.review.stats import DecisionCounts, HourCounts

log = logging.getLogger("modstream.review")
PUBLISH_GRACE_SECONDS = 60.0
REPORT_GRACE_SECONDS = 120.0  # a page's report of time unblurred is taken this long after its verdict


def review_entry_id(event_id: str) -> str:
    """The id of the bank entry a reviewer's remove of ``event_id`` makes."""
    return f"review-{event_id}"


def review_phrase_entry_id(event_id: str) -> str:
    """The id of the text bank entry a phrase given with a reviewer's remove of ``event_id`` makes."""
    return f"review-{event_id}.text"


OUTCOME = {"approve": Outcome.ALLOW, "remove": Outcome.BLOCK}


class UnknownLabels(ValueError):
    """A verdict names a label the job does not ask about, and that nobody defined."""


class NotGold(ValueError):
    """A job that cannot be made a gold item, or an answer that does not fit it."""


class CannotBank(ValueError):
    """A verdict asks to add the image to a bank that does not exist, or the job has no hashes;
    or gives a phrase that is not in the image's text, that banks refuse, or that no label maps
    to a bank."""


class ReviewService:
    def __init__(
        self,
        settings: Settings,
        bank_names: Callable[[], Collection[str]] = tuple,
        taxonomy_labels: Callable[[], Collection[str]] = tuple,
        appeal_rules: Callable[[str], AppealRules] = lambda tenant: AppealRules(),
        bank_value: Callable[[str, str], str] = lambda kind, value: value,
        review_rules: RulesByTenant | None = None,
    ) -> None:
        self.settings = settings
        # The banks a reviewer can add to (the composer passes the bank room's live view).
        self.bank_names = bank_names
        # A value of a signal type as banks keep it, or ValueError saying why not (the composer
        # passes the bank room's check; without it there are no banks to add to either).
        self.bank_value = bank_value
        # The taxonomy's labels, which no defined label may take (the composer reads the
        # file; raises LabelError when it cannot).
        self.taxonomy_labels = taxonomy_labels
        # A tenant's appeals section (the composer passes the policies' live view).
        self.appeal_rules = appeal_rules
        # Each tenant's review section (severe labels, due targets, exposure limits).
        self.review_rules: RulesByTenant = review_rules or SameForAll()
        self.redis = aioredis.Redis.from_url(settings.redis_url)
        self.queues = ReviewQueues.of(self.redis, settings)
        self.audit_log = AuditLog(self.redis)
        self.labels = LabelRegistry(self.redis)
        self.counts = DecisionCounts(self.redis)
        self.appeals = AppealBook(self.redis)
        self.exposure = ExposureBook(self.redis)
        self.gold = GoldBook(self.redis)
        self._random = random.random
        self.store = ObjectStore(settings)
        self._producer: AIOKafkaProducer | None = None
        self._publisher: KafkaPublisher | None = None

    async def order_legacy_jobs(self) -> None:
        """Give jobs queued before due dates existed (by this version during an upgrade, or by an
        older dashboard still running beside it) a standard due date: the feeds do it every minute."""
        moved = await self.queues.reorder_legacy(self.review_rules("").due.within("standard").total_seconds())
        if moved:
            log.warning("review jobs from before due dates given one", extra={"jobs": moved})

    async def start(self) -> None:
        # Made here, not in __init__: aiokafka binds to the event loop that is running.
        self._producer = AIOKafkaProducer(**producer_options(self.settings))
        await self._producer.start()
        self._publisher = KafkaPublisher(self._producer)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        await self.redis.aclose()

    async def queue_stats(self) -> list[QueueStats]:
        return await self.queues.stats()

    async def claim_next(self, queue: str | None, reviewer: str) -> tuple[ReviewJob, Lease] | None:
        """The job due soonest in ``queue`` (None: in any queue) that the reviewer may take now.

        Raises ``OnBreak`` when a run of severe images calls for a break (starting it, audited)
        or one is on; a tenant's severe jobs are passed over once the reviewer reached its cap.
        """
        now = datetime.now(UTC)
        exposure = await self.exposure.today(reviewer, now)
        if exposure.on_break(now):
            raise OnBreak(exposure.break_until or now)
        if break_starts(exposure):
            until = await self.exposure.start_break(exposure, now)
            await self.audit(reviewer, "break", until=until.isoformat(), severe_in_row=exposure.severe_in_row)
            raise OnBreak(until)
        refused = refusals(
            exposure, lambda tenant: self.review_rules(tenant or "").exposure, self.review_rules.tenants()
        )
        queues = await self.queues.names() if queue is None else [queue]
        claimed = await self._gold_showing(queues, reviewer, refused, now)
        claimed = claimed or await self.queues.claim(queues, reviewer, now.timestamp(), refused)
        if claimed is None:
            return None
        job, lease = claimed
        await self.exposure.seen(reviewer, job, self.review_rules(job.tenant).exposure, now)
        if lease.first_claim:
            waited = (now - job.enqueued_at).total_seconds()
            metrics.review_first_look.record(waited, {"queue": job.queue, "severity": job.severity})
        await self.audit(reviewer, "claim", job=job.job_id, queue=job.queue)
        return claimed

    async def _gold_showing(
        self, queues: list[str], reviewer: str, refused: SevereRefused, now: datetime
    ) -> tuple[ReviewJob, Lease] | None:
        """Now and then (the queue's gold rate) a gold item of the queue whose job is due soonest,
        as a job of its own: only while real jobs wait, so that it tells itself apart by nothing."""
        gold = self.review_rules("").gold
        roll = self._random()
        if roll >= max([gold.rate, *gold.queues.values()]):
            return None  # most claims: no need to look at the queues' heads
        target = await self.queues.soonest(queues)
        if target is None or roll >= gold.rate_of(target):
            return None
        item = await self.gold.draw(target, reviewer, refused.allows)
        if item is None:
            return None
        fresh = {"job_id": new_id(), "enqueued_at": now, "due_at": None, "trace_context": {}, "double_review_rate": 0.0}
        showing = item.job.model_copy(update=fresh).under(self.review_rules(item.job.tenant))
        lease = await self.queues.lease_gold(showing, item.event_id, reviewer, now.timestamp())
        return showing, lease

    async def mark_gold(self, job_id: str, answer: GoldAnswer, by: str) -> GoldItem:
        """Make a verdicted job a gold item with ``answer`` (audited). Refused (``NotGold``) for a job
        not closed, or one whose verdict decides nothing, or labels it does not ask about."""
        found = await self.queues.job(job_id)
        if found is None or found[2] != "closed":
            raise NotGold(f"job {job_id} has no verdict (it is {found[2] if found else 'unknown'}): gold needs one")
        job = found[0]
        if job.kind not in ("threshold_review", "audit_sample"):
            raise NotGold(f"job {job_id} is a {job.kind}: gold items are threshold reviews and audit samples")
        offered = await self.offered_labels(job)
        if unknown := sorted(answer.labels - set(offered)):
            raise NotGold(f"job {job_id} asks about no label {', '.join(unknown)} (its labels: {', '.join(offered)})")
        if answer.verdict not in OUTCOME:
            raise NotGold(f"a verdict is {' or '.join(OUTCOME)}, not {answer.verdict!r}")
        item = await self.gold.mark(job, answer, by, decided_by=await self.queues.reviewer_of(job_id) or "")
        await self.audit(by, "gold_marked", job=job_id, verdict=answer.verdict, labels=sorted(answer.labels))
        return item

    async def exposure_today(self, reviewer: str) -> Exposure:
        return await self.exposure.today(reviewer)

    async def report_unblurred(self, job_id: str, reviewer: str, seconds: float) -> float:
        """Count seconds the reviewer looked at the job's image unblurred; the day's total for its
        severity. Only the reviewer holding the job reports on it, or who just gave its verdict
        (the page's last report goes as it leaves, racing the verdict)."""
        found = await self.queues.job(job_id)
        held = found is not None and found[1] is not None and found[1].reviewer == reviewer
        if found is None or not (held or await self.queues.closed_by(job_id, reviewer, REPORT_GRACE_SECONDS)):
            raise LeaseLost(f"{reviewer} does not hold a live lease on job {job_id}")
        return await self.exposure.add_unblurred(reviewer, found[0].severity, seconds)

    async def override_exposure(self, reviewer: str, by: str, reason: str) -> None:
        """Lift a reviewer's caps and break for the rest of the day (an admin's decision, audited)."""
        await self.exposure.override(reviewer, by)
        await self.audit(by, "exposure_override", reviewer=reviewer, reason=reason)

    async def job(self, job_id: str) -> tuple[ReviewJob, Lease | None, str] | None:
        return await self.queues.job(job_id)

    async def skip(self, job_id: str, reviewer: str) -> bool:
        released = await self.queues.release(job_id, reviewer)
        if released:
            await self.audit(reviewer, "release", job=job_id)
        return released

    async def submit(self, job_id: str, reviewer: str, verdict: VerdictInput) -> ModerationDecision | ReviewVerdict:
        """Publish the reviewer's verdict and close the job. Returns the final decision it
        published, or for a second review or a labelling job (which decide nothing) its verdict record."""
        found = await self.queues.job(job_id)
        lease = found[1] if found else None
        if found is None or lease is None or lease.reviewer != reviewer:
            raise LeaseLost(f"{reviewer} does not hold a live lease on job {job_id}")
        job = found[0]
        offered = await self.offered_labels(job)
        unknown = sorted(set(verdict.labels) - set(offered))
        if unknown:
            raise UnknownLabels(
                f"job {job_id} asks about no label {', '.join(unknown)} (its labels: {', '.join(offered)})"
            )
        seconds = round((datetime.now(UTC) - lease.claimed_at).total_seconds(), 2)
        if (gold := await self.queues.gold_of(job_id)) is not None:
            return await self._answer_gold(job, gold, reviewer, verdict, seconds)
        banked = self._bank_entries(job, reviewer, verdict)
        await self.queues.extend(job_id, reviewer, PUBLISH_GRACE_SECONDS)
        decision = self._final_decision(job, reviewer, verdict, seconds)
        record = self._verdict_record(job, reviewer, verdict, seconds, decision)
        if self._publisher is None:
            raise RuntimeError("ReviewService.start() was not called")
        # A span of the upload's own trace, when the job kept it.
        with tracer("modstream.review").start_as_current_span("verdict", context=propagate.extract(job.trace_context)):
            headers = inject_headers()
            outputs: list[tuple[str, Record]] = [(self.settings.topic_decisions, decision)] if decision else []
            outputs.append((self.settings.topic_review_verdicts, record))
            if job.appeal is not None:
                answered = AppealOutcome(
                    appeal_id=job.appeal.appeal_id,
                    event_id=job.event_id,
                    tenant=job.tenant,
                    outcome="overturned" if decision is not None else "upheld",
                    decision_id=job.decision_id,
                    new_decision_id=decision.decision_id if decision is not None else None,
                    due_at=job.appeal.due_at,
                )
                outputs.append((self.settings.topic_appeal_outcomes, answered))
            for topic, value in outputs:
                await self._publisher.publish(topic, job.event_id, value.to_bytes(), headers)
            for entry in banked:
                key = entry_key(entry.bank, entry.entry_id)
                await self._publisher.publish(self.settings.topic_banks, key, entry.to_bytes(), headers)
            withdrawn = self._withdrawn_by(job, decision)
            for key in withdrawn:
                await self._publisher.publish(self.settings.topic_banks, key, None, headers)
        metrics.verdicts.add(1, {"queue": job.queue, "verdict": verdict.verdict.value})
        waited = (datetime.now(UTC) - job.enqueued_at).total_seconds()
        metrics.review_decision_time.record(waited, {"queue": job.queue, "severity": job.severity, "kind": job.kind})
        if job.appeal is not None:
            await self.appeals.decided(job)
            now = datetime.now(UTC)
            outcome = "overturned" if decision is not None else "upheld"
            late = str(now > job.appeal.due_at).lower()
            metrics.appeals_decided.add(1, {"tenant": job.tenant, "outcome": outcome, "late": late})
            metrics.appeal_decision_time.record((now - job.appeal.lodged_at).total_seconds(), {"queue": job.queue})
        if decision is not None:
            metrics.decisions.add(1, {"outcome": decision.decision.value, "source": decision.source})
        second = job.second_review(datetime.now(UTC)) if job.wants_second_review else None
        if second is not None:
            await self.queues.enqueue(second, excluded=[reviewer])  # as severe and as soon due as the first
        await self.queues.close(job_id, reviewer)
        details: dict[str, object] = {"second_job": second.job_id} if second else {}
        if banked:
            details["banked"] = [f"{e.bank}/{e.entry_id}" for e in banked]
        if withdrawn:
            details["withdrawn"] = withdrawn
        await self.audit(
            reviewer, "verdict", job=job_id, kind=job.kind, verdict=verdict.verdict.value, seconds=seconds, **details
        )
        return decision or record

    async def queue_job(self, job: ReviewJob, excluded: Collection[str] = ()) -> bool:
        """Queue a new job with its tenant's severity and due date, unless a job with its id was
        ever queued (True when added); ``excluded`` reviewers can never claim it."""
        return await self.queues.enqueue(job.under(self.review_rules(job.tenant)), excluded)

    async def _answer_gold(
        self, job: ReviewJob, gold: str, reviewer: str, verdict: VerdictInput, seconds: float
    ) -> ReviewVerdict:
        """A verdict on a showing of a gold item: judged against its answer and counted, nothing
        published, nothing banked; the showing ends."""
        item = await self.gold.get(gold)
        right = None
        if item is not None:  # else unmarked while shown: nothing to judge against
            answers = judged(item.answer, verdict.verdict.value, verdict.labels, item.job.labels_triggered)
            await self.gold.record(reviewer, item, answers)
            right = answers[VERDICT]
            metrics.gold_answers.add(1, {"queue": job.queue, "right": str(right).lower()})
        await self.queues.close(job.job_id, reviewer)
        details = {"verdict": verdict.verdict.value, "seconds": seconds, "gold": gold, "right": right}
        await self.audit(reviewer, "verdict", job=job.job_id, kind=job.kind, **details)
        return self._verdict_record(job, reviewer, verdict, seconds, None)

    def _verdict_record(
        self, job: ReviewJob, reviewer: str, verdict: VerdictInput, seconds: float, decision: ModerationDecision | None
    ) -> ReviewVerdict:
        return ReviewVerdict(
            **job.model_dump(
                include={"tenant", "bucket", "key", "queue", "scores", "model", "hashes", "bank_match", "policy_id"}
            ),
            event_id=job.event_id,
            job_id=job.job_id,
            job_kind=job.kind,
            verdict=verdict.verdict.value,
            labels=sorted(set(verdict.labels)),
            note=verdict.note,
            reviewer=reviewer,
            review_seconds=seconds,
            automatic_decision_id=job.decision_id,
            human_decision_id=decision.decision_id if decision else None,
            policy_version=job.policy_version,
        )

    async def enqueue_all(self, jobs: list[ReviewJob], by: str) -> int:
        """Add jobs someone asked for (a seeded labelling queue), audited; how many were new."""
        added = 0
        for job in jobs:
            added += await self.queue_job(job)
        await self.audit(by, "jobs_enqueued", queues=sorted({j.queue for j in jobs}), asked=len(jobs), added=added)
        return added

    async def offered_labels(self, job: ReviewJob) -> dict[str, str]:
        """The labels a reviewer answers for, by name, each with its description: the job's own
        (no description) and every label defined now (read at each call, so a new one shows
        on every job at once)."""
        defined = {d.name: d.description for d in await self.labels.all()}
        return dict(sorted(({label: "" for label in job.labels_offered} | defined).items()))

    async def define_label(self, name: str, description: str, by: str) -> LabelDefinition:
        """Define a review label (LabelError: a bad name or description, a taxonomy label, or
        defined already), audited as ``label_defined``."""
        definition = label_definition(name, description, by, taxonomy=self.taxonomy_labels())
        await self.labels.define(definition)
        await self.audit(by, "label_defined", label=definition.name, description=definition.description)
        return definition

    def _bank_entries(self, job: ReviewJob, reviewer: str, verdict: VerdictInput) -> list[BankEntry]:
        """The entries a remove puts in banks: the image's hashes in the bank the reviewer chose
        and in those the policy names for the labels given, and the phrase given (if any) in
        the policy's. Checked before anything is published."""
        if verdict.verdict is not Verdict.REMOVE or not job.decides:
            return []  # a second review or a labelling job decides nothing, so it banks nothing either
        by_policy = {job.bank_on_remove[label] for label in verdict.labels if label in job.bank_on_remove}
        wanted = by_policy | ({verdict.add_to_bank} if verdict.add_to_bank is not None else set())
        phrase = None if verdict.phrase is None else self._bankable_phrase(job, verdict.phrase, by_policy)
        if not wanted:
            return []
        if job.hashes is None:
            raise CannotBank(f"job {job.job_id} carries no hashes of its image: it cannot be added to a bank")
        unknown = sorted(wanted - set(self.bank_names()))
        if unknown:
            raise CannotBank(f"no bank named {', '.join(unknown)}")
        # A retried verdict rewrites the same entries (their ids are the upload's).
        about = {"added_by": reviewer, "source_event_id": job.event_id, "note": verdict.note}
        images = [
            BankEntry(bank=bank, entry_id=review_entry_id(job.event_id), **job.hashes.entry_fields(), **about)
            for bank in sorted(wanted)
        ]
        phrases = [
            BankEntry(bank=bank, entry_id=review_phrase_entry_id(job.event_id), signals={"text": phrase}, **about)
            for bank in sorted(by_policy if phrase is not None else ())
        ]
        return images + phrases

    def _bankable_phrase(self, job: ReviewJob, phrase: str, banks: Collection[str]) -> str:
        """The phrase as text banks keep it; ``CannotBank`` unless banks take it, it is in the
        image's recognised text (compared folded, as text banks match), and a label given maps to
        a bank."""
        try:
            kept = self.bank_value("text", phrase)
        except ValueError as exc:
            raise CannotBank(f"phrase: {exc}") from exc
        lines = [] if job.text is None else job.text.lines
        if not any(fold_term(kept) in fold(line.text).text for line in lines):
            read = (
                "no text was read in it"
                if not lines
                else "it is not in the text read in it (case, spacing and look-alike characters aside)"
            )
            raise CannotBank(f"the phrase {kept!r} cannot be banked from this image: {read}")
        if not banks:
            mapped = ", ".join(f"{label} -> {bank}" for label, bank in sorted(job.bank_on_remove.items()))
            raise CannotBank(
                "the phrase has no bank to go to: no label given maps to one in the policy's bank_on_remove "
                f"({mapped or 'which maps none'}); tick a label that does, or leave the phrase out"
            )
        return kept

    def _withdrawn_by(self, job: ReviewJob, decision: ModerationDecision | None) -> list[str]:
        """The bank entries an overturned appeal takes back: any a reviewer's remove of the image
        made, its hashes and a phrase of its text (so that a copy is not blocked again by the
        decision overturned). Tombstones for banks that never held one change nothing."""
        if job.kind != "appeal" or decision is None:
            return []
        made = (review_entry_id(job.event_id), review_phrase_entry_id(job.event_id))
        return [entry_key(bank, entry_id) for bank in sorted(self.bank_names()) for entry_id in made]

    def _final_decision(
        self, job: ReviewJob, reviewer: str, verdict: VerdictInput, seconds: float
    ) -> ModerationDecision | None:
        """The decision a verdict publishes: a deciding job's, or an appeal's that overturns the
        restriction (one that upholds it leaves the decision appealed standing)."""
        if job.decides:
            return self._decision(job, reviewer, verdict, seconds)
        if job.kind == "appeal" and verdict.verdict is Verdict.APPROVE:
            return self._decision(job, reviewer, verdict, seconds).model_copy(
                update={"source": "appeal", "reasons": [APPEAL_OVERTURNED]}
            )
        return None

    async def lodge(self, appeal: AppealLodged) -> AppealOutcome:
        """Queue ``appeal`` for a person who did not take the decision appealed, or refuse it
        saying why; the outcome is published on the appeal-outcomes topic either way."""
        now = datetime.now(UTC)
        rules = self.appeal_rules(appeal.tenant)
        restriction = await self.appeals.restriction(appeal.event_id)
        refused = refusal(appeal, restriction, rules, now)
        if refused is None and restriction is not None:
            keep = kept_for(restriction, rules, now)
            heard = await self.appeals.first_appeal(restriction.decision_id, appeal.appeal_id, keep)
            if heard is not None:
                refused = (
                    AppealRefusal.ALREADY_APPEALED,
                    f"decision {restriction.decision_id} was appealed in {heard}",
                )
        answer = {"appeal_id": appeal.appeal_id, "event_id": appeal.event_id, "tenant": appeal.tenant}
        if refused is not None or restriction is None:
            reason, detail = refused or (AppealRefusal.NO_RESTRICTION, "")
            outcome = AppealOutcome(**answer, outcome="refused", refusal=reason, detail=detail)
            await self.audit("appeals", "appeal_refused", appeal=appeal.appeal_id, reason=reason.value)
        else:
            job = appeal_job(appeal, restriction, rules, now)
            excluded = [restriction.reviewer] if restriction.reviewer else []
            if await self.queue_job(job, excluded=excluded):
                await self.appeals.track(job)
                await self.audit(
                    "appeals",
                    "appeal_queued",
                    appeal=appeal.appeal_id,
                    job=job.job_id,
                    excluded=excluded,
                    queue=job.queue,
                )
            due = rules.due(appeal.occurred_at)
            outcome = AppealOutcome(**answer, outcome="queued", decision_id=restriction.decision_id, due_at=due)
        if self._publisher is None:
            raise RuntimeError("ReviewService.start() was not called")
        await self._publisher.publish(self.settings.topic_appeal_outcomes, appeal.event_id, outcome.to_bytes(), [])
        return outcome

    def _decision(self, job: ReviewJob, reviewer: str, verdict: VerdictInput, seconds: float) -> ModerationDecision:
        return ModerationDecision(
            # The text read goes on with the scores: an appeal against a person's block is heard
            # on this decision, and its reviewer must see the same text (appeals.appeal_job).
            **job.model_dump(
                include={"tenant", "bucket", "key", "scores", "triggered", "model", "hashes", "text", "text_matches"}
            ),
            event_id=job.event_id,
            decision=OUTCOME[verdict.verdict.value],
            # Why it reached a person too: a statement of reasons tells a person's decision
            # on what a model or a bank flagged from one on an audit sample.
            reasons=["human_review", *job.reasons],
            labels=verdict.labels,
            policy_id=job.policy_id,
            policy_version=job.policy_version,
            source="human",
            review_queue=job.queue,
            reviewer=reviewer,
            review_seconds=seconds,
            uploaded_at=job.uploaded_at,
            latency_ms=seconds * 1000,
        )

    async def image(self, job: ReviewJob) -> bytes:
        """The image under review, from object storage (callers check access first)."""
        return await self.store.aget(job.bucket, job.key, self.settings.max_image_bytes)

    async def audit(self, actor: str, action: str, **details: object) -> None:
        await self.audit_log.append(actor, action, **details)

    async def audit_entries(
        self, *, actor: str | None = None, action: str | None = None, limit: int = 200
    ) -> list[AuditEntry]:
        return await self.audit_log.entries(actor=actor, action=action, limit=limit)

    async def hourly_counts(self, hours: int = 24) -> list[HourCounts]:
        return await self.counts.hourly(hours)

    async def depth_history(self, hours: int = 24) -> dict[str, list[tuple[datetime, int]]]:
        since = datetime.now(UTC) - timedelta(hours=hours)
        return await self.queues.depth_history(since.timestamp())
