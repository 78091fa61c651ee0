"""Score images with a candidate model beside the serving one, off the decision's path.

While ``modstream model shadow`` runs, Triton serves a second ensemble (the candidate
behind the same preprocess model). For every image the worker scored, it sends the
same bytes there in the background and writes both sets of scores, and the decision
the same policy would have made from each, to the shadow topic. Nothing here can
change, delay or fail a decision: a shadow request that fails is logged and dropped,
and when too many are in flight new ones are skipped (shadowing samples traffic).
"""

import asyncio
import logging
import time

from modstream.core.events import ImageUploaded, ShadowScore
from modstream.core.inference import Scores, TritonScorer
from modstream.core.kafka import Publisher
from modstream.policy.engine import Policy, Verdict, evaluate, label_scores

log = logging.getLogger("modstream.worker.shadow")


class Shadow:
    def __init__(
        self, scorer: TritonScorer, publisher: Publisher, topic: str, max_in_flight: int, check_every: float = 2.0
    ) -> None:
        self._scorer = scorer
        self._publisher = publisher
        self._topic = topic
        self._max_in_flight = max_in_flight
        self._check_every = check_every
        self._active = False
        self._checked_at = float("-inf")
        self._checking = asyncio.Lock()
        self._in_flight: set[asyncio.Task[None]] = set()
        self.skipped = 0

    async def submit(
        self, event: ImageUploaded, image: bytes, serving: Scores, verdict: Verdict, policy: Policy
    ) -> None:
        """Start scoring ``image`` with the shadow model, if one runs; returns at once.
        ``serving``: the serving model's scores as the policy saw them (its text labels too)."""
        if not await self._is_active():
            return
        if len(self._in_flight) >= self._max_in_flight:
            self.skipped += 1
            if self.skipped % 100 == 1:
                log.warning("shadow busy: %d images not shadowed so far (MODSTREAM_SHADOW_MAX_IN_FLIGHT)", self.skipped)
            return
        task = asyncio.create_task(self._compare(event, image, serving, verdict, policy))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _is_active(self) -> bool:
        # One readiness question every few seconds is how a started or stopped shadow
        # reaches running workers without a restart.
        # Actors that arrive during a check wait for its answer rather than read the old one.
        async with self._checking:
            if time.monotonic() - self._checked_at >= self._check_every:
                active = await self._scorer.is_ready()
                self._checked_at = time.monotonic()
                if active != self._active:
                    log.info("shadow model %s", "found: shadowing" if active else "gone: not shadowing")
                self._active = active
        return self._active

    async def _compare(
        self, event: ImageUploaded, image: bytes, serving: Scores, verdict: Verdict, policy: Policy
    ) -> None:
        try:
            candidate = await self._scorer.score(image)
            # As the policy sees the serving scores: with the text labels scored from its reading.
            shadow_scores, _ = label_scores(candidate.by_label, candidate.text, policy)
            record = ShadowScore(
                **event.model_dump(include={"event_id", "tenant", "bucket", "key"}),
                serving_model=serving.model,
                serving_scores=serving.by_label,
                serving_decision=verdict.decision,
                shadow_model=candidate.model,
                shadow_scores=shadow_scores,
                shadow_decision=evaluate(shadow_scores, policy, content_id=event.event_id).decision,
                policy_id=policy.id,
                policy_version=policy.version,
            )
            await self._publisher.publish(self._topic, event.event_id, record.to_bytes(), [])
        except Exception as exc:  # whatever goes wrong here must not reach the decision
            log.warning("shadow scoring failed", extra={"event_id": event.event_id, "error": str(exc)[:300]})
