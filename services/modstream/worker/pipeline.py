"""One upload event, start to finish: intake -> dedupe -> fetch -> infer -> decide -> publish.

Read top to bottom, ``Pipeline.handle`` is the whole data flow of one image. Every
way an event can fail ends in a record on a topic (a dead letter or an ``error``
decision); an unreachable dependency is waited for, never turned into a decision.
"""

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from modstream.bank.signals import hash_image
from modstream.bank.state import BANK_OUTCOMES, Banks, Match
from modstream.core import metrics
from modstream.core.dedupe import Claim, DecidedEvents, renewing
from modstream.core.events import (
    HASH_MATCH,
    DeadLetter,
    DecisionError,
    ErrorReason,
    ImageHashes,
    ImageUploaded,
    ModelRef,
    ModerationDecision,
    Outcome,
    ReviewRequest,
    SaliencyRef,
    TextMatch,
)
from modstream.core.inference import ImageRejected, Scores, TritonScorer
from modstream.core.kafka import Publisher
from modstream.core.retry import GaveUp, retrying
from modstream.core.settings import Settings
from modstream.core.storage import ObjectMissing, ObjectStore, ObjectTooLarge
from modstream.core.tracing import KafkaHeaders, extract_context, inject_headers, tracer
from modstream.explain.store import Explainer
from modstream.policy.engine import Policy, evaluate, label_scores
from modstream.policy.watcher import PolicyStore
from modstream.worker.duplicates import ScoreCache
from modstream.worker.intake import Admission, Malformed, admit
from modstream.worker.notifications import Ignored, Tenancy, admit_notification
from modstream.worker.shadow import Shadow

log = logging.getLogger("modstream.worker")
# How often a copy of an event polls while another copy holds its lease.
CLAIM_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Delivery:
    """A Kafka record as the worker received it."""

    value: bytes | None
    headers: KafkaHeaders
    topic: str
    partition: int
    offset: int


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        scorer: TritonScorer,
        decided: DecidedEvents,
        publisher: Publisher,
        policies: PolicyStore,
        banks: Banks | None = None,
        shadow: Shadow | None = None,
        explainer: Explainer | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.scorer = scorer
        self.decided = decided
        self.publisher = publisher
        self.policies = policies
        self.banks = Banks() if banks is None else banks
        self.shadow = shadow
        self.explainer = explainer
        self.score_cache = ScoreCache(settings.score_cache_entries, settings.score_cache_ttl_seconds)
        self.admission = Admission(
            max_event_bytes=settings.max_event_bytes,
            buckets=frozenset(settings.allowed_buckets or [settings.uploads_bucket]),
            tenants=None if settings.tenants is None else frozenset(settings.tenants),
        )
        self.tenancy = Tenancy(settings.notification_tenants, settings.notification_tenant_from_key)
        self.tracer = tracer("modstream.worker")
        # Tenant -> the audit rate drift raised it to (kept current by the app, from Redis).
        self.raised_audit_rates: dict[str, float] = {}

    async def handle(self, delivery: Delivery) -> list[ModerationDecision | DeadLetter | None]:
        """Decide each event a record announces: an upload event one, a bucket notification one
        per entry. None for an event already decided (a replay, or a copy of it) and for an
        entry about anything but a new object."""
        metrics.events_consumed.add(1, {"topic": delivery.topic})
        if delivery.topic == self.settings.topic_s3_notifications:
            events = admit_notification(delivery.value, self.admission, self.tenancy)
        else:
            events = [admit(delivery.value, self.admission)]
        return [await self._moderate(delivery, event) for event in events]

    async def _moderate(
        self, delivery: Delivery, event: ImageUploaded | Malformed | Ignored
    ) -> ModerationDecision | DeadLetter | None:
        started = time.perf_counter()
        with self.tracer.start_as_current_span("moderate", context=extract_context(delivery.headers)) as span:
            if isinstance(event, Ignored):
                log.info("notification ignored", extra={"detail": event.detail, "offset": delivery.offset})
                return None
            if isinstance(event, Malformed):
                return await self._dead_letter(delivery, event)
            span.set_attribute("modstream.event_id", event.event_id)
            claim = await self._claim(event.event_id)
            if claim.token is None:
                log.info(
                    "already decided, skipping", extra={"event_id": event.event_id, "decision_id": claim.decided_as}
                )
                return None
            try:
                async with renewing(self.decided, event.event_id, claim.token):
                    decision = await self._decide_or_explain(event, started)
                    await self._publish(decision)
                    return decision
            except BaseException:
                # Abandoned (shutdown) or failed before the mark: a replay need not wait for the lease.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.decided.release(event.event_id, claim.token), 2.0)
                raise

    async def _claim(self, event_id: str) -> Claim:
        """This event's lease, waiting while another copy of it is being decided."""
        waiting = False
        while True:
            claim = await retrying(lambda: self.decided.try_claim(event_id), "redis")
            if claim is not None:
                return claim
            if not waiting:
                log.info("another copy of this event is being decided, waiting", extra={"event_id": event_id})
                waiting = True
            await asyncio.sleep(CLAIM_POLL_SECONDS)

    async def _decide_or_explain(self, event: ImageUploaded, started: float) -> ModerationDecision:
        """The decision, or an ``error`` decision naming what went wrong: one bad event never
        reaches Faust's agent (an outage is still waited out inside, never turned into this)."""
        try:
            return await self._decide(event, started)
        except Exception as exc:
            log.error("unexpected failure deciding an event", exc_info=True, extra={"event_id": event.event_id})
            return self._error(event, started, ErrorReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:500])

    async def _decide(self, event: ImageUploaded, started: float) -> ModerationDecision:
        with self._stage("fetch"):
            try:
                image = await retrying(
                    lambda: self.store.aget(event.bucket, event.key, self.settings.max_image_bytes),
                    "object store",
                    still_up=lambda: self.store.answers(event.bucket),
                )
            except ObjectMissing as exc:
                return self._error(event, started, ErrorReason.OBJECT_MISSING, str(exc))
            except ObjectTooLarge as exc:
                return self._error(event, started, ErrorReason.TOO_LARGE, str(exc))
            except GaveUp as exc:
                return self._error(event, started, ErrorReason.FETCH_FAILED, str(exc))
        if not image:
            return self._error(event, started, ErrorReason.EMPTY_FILE, "the object has 0 bytes")
        hashes = hash_image(image)  # every bank signal type that hashes bytes; PDQ comes from Triton
        # A byte-identical copy of a banked image is decided by the bank, without Triton.
        if (exact := self.banks.match(hashes, event.tenant)) is not None:
            return self._matched(event, started, exact, hashes)
        with self._stage("inference"):
            scores = self.score_cache.get(hashes.sha256)
            if scores is not None:
                metrics.score_cache_hits.add(1)
            else:
                try:
                    scores = await retrying(lambda: self.scorer.score(image), "triton", still_up=self.scorer.is_ready)
                except ImageRejected as exc:
                    return self._error(event, started, exc.reason, exc.message, hashes)
                except GaveUp as exc:
                    return self._error(event, started, ErrorReason.REJECTED_BY_MODEL, str(exc), hashes)
                self.score_cache.put(hashes.sha256, scores)
        hashes = hashes.model_copy(update={"pdq": scores.pdq})
        if (similar := self.banks.match(hashes, event.tenant)) is not None:
            return self._matched(event, started, similar, hashes, scores)
        # A phrase banked by reviewers decides like a banked image, before the policy.
        if scores.text is not None and (worded := self.banks.match_text(scores.text, event.tenant)).decides:
            return self._matched(event, started, worded.decides, hashes, scores, worded.spans)
        with self._stage("policy"):
            self.policies.observe_model_labels(list(scores.by_label))
            policy = self._policy(event)
            # Text labels are scored from what OCR read, by the tenant's own text rules.
            labelled, words = label_scores(scores.by_label, scores.text, policy)
            verdict = evaluate(labelled, policy, content_id=event.event_id)
        if self.shadow is not None:
            await self.shadow.submit(event, image, dataclasses.replace(scores, by_label=labelled), verdict, policy)
        saliency = None
        if verdict.decision is Outcome.BLOCK and policy.saliency_on_block:
            saliency = await self._saliency(event, image, scores.model)
        return self._decision(
            event,
            started,
            policy,
            decision=verdict.decision,
            scores=labelled,
            triggered=verdict.triggered,
            reasons=verdict.reasons,
            review_queue=verdict.review_queue,
            model=scores.model,
            embedding=scores.embedding,
            hashes=hashes,
            text=scores.text,
            text_matches=words.matches,
            saliency=saliency,
            audit_sample=verdict.audit_sample,
            audit_rate=policy.audit_sample_rate,
            thresholds=policy.thresholds(),
        )

    def _matched(
        self,
        event: ImageUploaded,
        started: float,
        match: Match,
        hashes: ImageHashes,
        scores: Scores | None = None,
        text_matches: list[TextMatch] | None = None,
    ) -> ModerationDecision:
        """The bank's action decides, in place of the policy's verdict; an allow bank's match
        skips review (it is known good)."""
        metrics.bank_matches.add(1, {"bank": match.bank.name, "signal": match.signal})
        policy = self._policy(event)
        return self._decision(
            event,
            started,
            policy,
            decision=BANK_OUTCOMES[match.bank.action],
            reasons=[HASH_MATCH],
            review_queue=match.bank.review_queue,
            bank_match=match.ref(),
            hashes=hashes,
            scores={} if scores is None else scores.by_label,
            model=None if scores is None else scores.model,
            embedding=None if scores is None else scores.embedding,
            text=None if scores is None else scores.text,
            text_matches=text_matches or [],
            thresholds=policy.thresholds(),
        )

    async def _saliency(self, event: ImageUploaded, image: bytes, model: ModelRef) -> SaliencyRef | None:
        """The block's occlusion maps, kept beside it, when its policy asks for them. A map that
        cannot be made is logged and the decision goes out without it: an explanation never holds
        a block back, and the review page makes it on demand."""
        if self.explainer is None:
            log.warning(
                "the policy asks for maps of blocks, but this worker makes none", extra={"event_id": event.event_id}
            )
            return None
        with self._stage("saliency"):
            try:
                return (await self.explainer.saliency(event.event_id, image, model)).ref
            except Exception as exc:
                log.warning(
                    "no occlusion maps for this block",
                    extra={"event_id": event.event_id, "detail": f"{type(exc).__name__}: {exc}"[:500]},
                )
                return None

    async def check_serving_model(self) -> None:
        """Ask Triton which model version serves (a 1x1 probe), so that a deploy or a rollback
        ends the reuse of older scores even while every upload is a duplicate."""
        self.score_cache.serving((await self.scorer.probe()).model.version)

    @contextlib.contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        """A span of the event's trace and a sample of the stage's latency histogram."""
        started = time.perf_counter()
        try:
            with self.tracer.start_as_current_span(name):
                yield
        finally:
            metrics.stage_duration.record(time.perf_counter() - started, {"stage": name})

    def _policy(self, event: ImageUploaded) -> Policy:
        policy = self.policies.current.for_tenant(event.tenant)
        raised = self.raised_audit_rates.get(event.tenant)
        return policy if raised is None else policy.audited_at_least(raised)

    def _error(
        self, event: ImageUploaded, started: float, reason: ErrorReason, message: str, hashes: ImageHashes | None = None
    ) -> ModerationDecision:
        log.warning(
            "image cannot be scored", extra={"event_id": event.event_id, "reason": reason.value, "detail": message}
        )
        return self._decision(
            event,
            started,
            self._policy(event),
            decision=Outcome.ERROR,
            reasons=[reason.value],
            error=DecisionError(reason=reason, message=message),
            hashes=hashes,
        )

    def _decision(self, event: ImageUploaded, started: float, policy: Policy, **outcome: Any) -> ModerationDecision:
        # The policy that decided, passed along: a reload in between must not relabel the decision.
        return ModerationDecision(
            **event.model_dump(include={"event_id", "tenant", "bucket", "key", "subject"}),
            policy_id=policy.id,
            policy_version=policy.version,
            uploaded_at=event.occurred_at,
            latency_ms=_ms_since(started),
            **outcome,
        )

    async def _publish(self, decision: ModerationDecision) -> None:
        with self._stage("publish"):
            headers = inject_headers()
            await self._send(self.settings.topic_decisions, decision.event_id, decision.to_bytes(), headers)
            if decision.review_queue is not None:
                policy = self.policies.current.for_tenant(decision.tenant)
                request = ReviewRequest.of(decision, policy.double_review_rate, policy.bank_on_remove)
                await self._send(self.settings.topic_review_requests, decision.event_id, request.to_bytes(), headers)
        # Marked only once the decision is on the topic: a crash in between repeats, never loses.
        await retrying(lambda: self.decided.mark(decision.event_id, decision.decision_id), "redis")
        _count(decision)
        log.info(
            "decided",
            extra={
                "event_id": decision.event_id,
                "decision": decision.decision.value,
                "latency_ms": decision.latency_ms,
            },
        )

    async def _send(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        # A broker outage is waited out like any other; a retry after a lost acknowledgement
        # can repeat a record, which consumers deduplicate by event id.
        await retrying(lambda: self.publisher.publish(topic, key, value, headers), "kafka")

    async def _dead_letter(self, delivery: Delivery, problem: Malformed) -> DeadLetter:
        payload = delivery.value or b""
        record = DeadLetter(
            reason=problem.reason,
            detail=problem.detail,
            source_topic=delivery.topic,
            partition=delivery.partition,
            offset=delivery.offset,
            event_id=problem.event_id,
            payload_base64=base64.b64encode(payload[: self.settings.max_event_bytes]).decode(),
            payload_bytes=len(payload),
            payload_sha256=hashlib.sha256(payload).hexdigest(),
            payload_truncated=len(payload) > self.settings.max_event_bytes,
        )
        log.warning(
            "dead-lettered",
            extra={"event_id": problem.event_id, "reason": problem.reason.value, "offset": delivery.offset},
        )
        key = problem.event_id or record.dead_letter_id
        await self._send(self.settings.topic_dead_letter, key, record.to_bytes(), inject_headers())
        trace.get_current_span().set_attribute("modstream.dead_letter", problem.reason.value)
        metrics.errors.add(1, {"reason": problem.reason.value})
        return record


def _count(decision: ModerationDecision) -> None:
    outcome = decision.decision.value
    metrics.decisions.add(1, {"outcome": outcome, "source": decision.source})
    for trigger in decision.triggered:
        metrics.decision_labels.add(1, {"outcome": outcome, "label": trigger.label})
    if decision.error is not None:
        metrics.errors.add(1, {"reason": decision.error.reason.value})


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
