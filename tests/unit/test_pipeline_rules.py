"""The pipeline's rules for one event, with stand-ins for the servers (pure logic, no I/O):
what becomes an error decision, what is waited out, what is never decided twice."""

import asyncio
from typing import Any

import pytest
from modstream.core.dedupe import LEASE, Claim, read_claim
from modstream.core.events import (
    ErrorReason,
    ImageUploaded,
    ModelRef,
    ModerationDecision,
    Outcome,
    ReviewRequest,
    TextReading,
)
from modstream.core.inference import Scores
from modstream.core.kafka import PublishUnavailable
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.storage import StorageUnavailable
from modstream.models.taxonomy import read_taxonomy
from modstream.policy.watcher import PolicyStore
from modstream.worker.pipeline import Delivery, Pipeline

LABELS = list(read_taxonomy(PROJECT_ROOT / "model_repository").labels)
NO_TEXT = TextReading(regions=0)  # the full profile reads every image; these have no text


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    sleep = asyncio.sleep

    async def instant(seconds: float) -> None:
        await sleep(0)  # still yield, as a real wait would

    monkeypatch.setattr("modstream.core.retry.asyncio.sleep", instant)
    monkeypatch.setattr("modstream.worker.pipeline.CLAIM_POLL_SECONDS", 0)


class Store:
    def __init__(self, failure: Exception | None = None, up: bool = True, watch: int = 0) -> None:
        self.failure, self.up, self.calls = failure, up, 0
        self.watch, self.watched = watch, asyncio.Event()  # set at the ``watch``-th call

    async def aget(self, bucket: str, key: str, max_bytes: int) -> bytes:
        self.calls += 1
        if self.calls == self.watch:
            self.watched.set()
        if self.failure is not None:
            raise self.failure
        return b"image bytes"

    async def answers(self, bucket: str) -> bool:
        return self.up


class Scorer:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure

    async def score(self, image: bytes) -> Scores:
        if self.failure is not None:
            raise self.failure
        return Scores({label: 0.01 for label in LABELS}, ModelRef(name="image_safety", version="1"), text=NO_TEXT)

    async def is_ready(self) -> bool:
        return True


class Decided:
    """Redis's SET NX semantics for the claim, in a dict."""

    lease_seconds = 30.0

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def try_claim(self, event_id: str) -> Claim | None:
        token = f"{LEASE}{len(self.values)}"
        found = self.values.get(event_id)
        if found is None:
            self.values[event_id] = token
        return read_claim(None if found is None else found.encode(), token)

    async def renew(self, event_id: str, token: str) -> bool:
        return self.values.get(event_id) == token

    async def release(self, event_id: str, token: str) -> None:
        if self.values.get(event_id) == token:
            del self.values[event_id]

    async def mark(self, event_id: str, decision_id: str) -> None:
        self.values[event_id] = decision_id


class Publisher:
    def __init__(self, outage: int = 0) -> None:
        self.outage = outage
        self.records: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        if self.outage > 0:
            self.outage -= 1
            raise PublishUnavailable("KafkaConnectionError: no broker")
        self.records.append((topic, value))

    def decisions(self) -> list[ModerationDecision]:
        return [ModerationDecision.model_validate_json(v) for t, v in self.records if t == "decisions"]


def pipeline(store: Any = None, scorer: Any = None, publisher: Any = None, decided: Any = None) -> Pipeline:
    settings = Settings(topic_decisions="decisions", topic_review_requests="reviews")
    servers: dict[str, Any] = {
        "store": store or Store(),
        "scorer": scorer or Scorer(),
        "decided": decided or Decided(),
        "publisher": publisher or Publisher(),
    }
    return Pipeline(settings=settings, policies=PolicyStore(settings.policies_dir, LABELS), **servers)


def delivery(event: ImageUploaded) -> Delivery:
    return Delivery(event.to_bytes(), [], "uploads", 0, 0)


async def decide(flow: Pipeline, event: ImageUploaded) -> ModerationDecision | None:
    [outcome] = await flow.handle(delivery(event))
    assert outcome is None or isinstance(outcome, ModerationDecision)
    return outcome


EVENT = ImageUploaded.new(tenant="t", bucket="uploads", key="a.jpg")


async def test_an_unexpected_failure_is_an_error_decision_not_a_dead_agent() -> None:
    # The answer Triton gave had 3 labels and 2 scores: scoring raises ValueError.
    publisher = Publisher()
    flow = pipeline(scorer=Scorer(ValueError("zip() argument 2 is shorter than argument 1")), publisher=publisher)
    decision = await decide(flow, EVENT)
    assert isinstance(decision, ModerationDecision) and decision.decision is Outcome.ERROR
    assert decision.error is not None and decision.error.reason is ErrorReason.INTERNAL_ERROR
    assert "ValueError: zip() argument 2 is shorter" in decision.error.message
    assert publisher.decisions() == [decision]


async def test_a_broker_outage_while_publishing_is_waited_out() -> None:
    publisher = Publisher(outage=5)
    decided = Decided()
    decision = await decide(pipeline(publisher=publisher, decided=decided), EVENT)
    assert isinstance(decision, ModerationDecision) and decision.decision is Outcome.ALLOW
    assert publisher.outage == 0 and publisher.decisions() == [decision]
    assert decided.values[EVENT.event_id] == decision.decision_id  # marked only once published


async def test_an_object_the_store_cannot_serve_while_it_answers_is_fetch_failed() -> None:
    store = Store(StorageUnavailable("s3://uploads/k…: ProtocolError: Connection reset by peer"), up=True)
    decision = await decide(pipeline(store=store), EVENT)
    assert isinstance(decision, ModerationDecision) and decision.error is not None
    assert decision.error.reason is ErrorReason.FETCH_FAILED
    assert "object store is up but failed this call 8 times" in decision.error.message
    assert "Connection reset by peer" in decision.error.message
    assert store.calls == 8


async def test_a_store_outage_is_never_fetch_failed() -> None:
    store = Store(StorageUnavailable("s3://uploads/a.jpg: MaxRetryError: connection refused"), up=False, watch=50)
    task = asyncio.create_task(decide(pipeline(store=store), EVENT))
    await asyncio.wait_for(store.watched.wait(), 5)
    assert not task.done()  # still waiting, 50 attempts in
    store.failure = None
    decision = await asyncio.wait_for(task, 5)
    assert isinstance(decision, ModerationDecision) and decision.decision is Outcome.ALLOW


async def test_two_copies_in_flight_together_give_one_decision() -> None:
    publisher = Publisher(outage=3)  # the first copy is slow to publish: the second waits meanwhile
    flow = pipeline(publisher=publisher)
    first, second = await asyncio.gather(decide(flow, EVENT), decide(flow, EVENT))
    assert [first is None, second is None].count(True) == 1
    assert len(publisher.decisions()) == 1


async def test_abandoned_work_gives_its_claim_back() -> None:
    store = Store(StorageUnavailable("connection refused"), up=False, watch=3)
    decided = Decided()
    task = asyncio.create_task(decide(pipeline(store=store, decided=decided), EVENT))
    await asyncio.wait_for(store.watched.wait(), 5)
    assert decided.values[EVENT.event_id].startswith(LEASE)
    task.cancel()  # a shutdown abandons in-flight events
    with pytest.raises(asyncio.CancelledError):
        await task
    assert EVENT.event_id not in decided.values


class Uncertain(Scorer):
    """Scores sexual.any between the default policy's review_at and block_at."""

    async def score(self, image: bytes) -> Scores:
        return Scores(
            {label: 0.6 if label == "sexual.any" else 0.01 for label in LABELS},
            ModelRef(name="image_safety", version="1"),
            text=NO_TEXT,
        )


async def test_a_review_request_carries_the_double_review_rate_of_the_policy_in_force() -> None:
    publisher = Publisher()
    flow = pipeline(scorer=Uncertain(), publisher=publisher)
    decision = await decide(flow, EVENT)
    assert isinstance(decision, ModerationDecision) and decision.decision is Outcome.REVIEW
    [request] = [ReviewRequest.model_validate_json(v) for t, v in publisher.records if t == "reviews"]
    rate = flow.policies.current.for_tenant(EVENT.tenant).double_review_rate
    assert rate > 0 and request.double_review_rate == rate


async def test_a_raised_audit_rate_samples_more_and_the_decision_says_so() -> None:
    """While drift has raised a tenant's audit rate, its automatic decisions are sampled at
    that rate (never below the policy's) and carry the rate in force."""
    flow = pipeline()
    policy_rate = flow.policies.current.for_tenant(EVENT.tenant).audit_sample_rate
    before = await decide(flow, EVENT.model_copy(update={"event_id": "audited-0"}))
    flow.raised_audit_rates = {EVENT.tenant: 1.0, "other": 0.5}
    during = await decide(flow, EVENT.model_copy(update={"event_id": "audited-1"}))
    flow.raised_audit_rates = {EVENT.tenant: 0.0}  # lower than the policy's: the policy's stands
    after = await decide(flow, EVENT.model_copy(update={"event_id": "audited-2"}))
    assert isinstance(before, ModerationDecision) and isinstance(during, ModerationDecision)
    assert isinstance(after, ModerationDecision)
    assert (before.audit_rate, during.audit_rate, after.audit_rate) == (policy_rate, 1.0, policy_rate)
    assert during.decision is Outcome.ALLOW and during.audit_sample and during.review_queue == "audit"
