"""The worker process: Faust hosts it (web pages, timers, the producer, start and stop), and
``consumer.UploadsConsumer`` reads upload events (and bucket notifications) into the pipeline.

Many events are in flight at once (``worker_concurrency``), so Triton's dynamic batcher
sees concurrent requests to batch. Offsets are committed (at least once) only up to the
end of each partition's contiguous run of events whose decision is on the decisions topic.
"""

import asyncio
import contextlib
import logging
import time

import faust
import mode
import redis.asyncio as aioredis
import redis.exceptions
from faust.web import Request, Response, View

from modstream.bank.topic import BankFollower
from modstream.core import metrics
from modstream.core.audit_rates import raised_audit_rates
from modstream.core.dedupe import DecidedEvents
from modstream.core.erased import ErasedImages
from modstream.core.inference import TritonScorer
from modstream.core.kafka import broker_errors, connection_options
from modstream.core.logs import configure_logging
from modstream.core.retry import retrying
from modstream.core.settings import SHADOW_SUFFIX, Settings
from modstream.core.storage import ObjectStore
from modstream.core.tracing import configure_tracing
from modstream.explain.store import explainer_for
from modstream.policy.watcher import PolicyStore
from modstream.review.audit import AuditLog
from modstream.worker.consumer import STOP_DRAIN_SECONDS, UploadsConsumer
from modstream.worker.lazy import Lazy
from modstream.worker.pipeline import Delivery, Pipeline
from modstream.worker.shadow import Shadow

log = logging.getLogger("modstream.worker")
# The bank followers' tasks, held so they are not collected while they run.
_following: set[asyncio.Future[None]] = set()


class FaustPublisher:
    def __init__(self, app: faust.App) -> None:
        self._app = app

    async def publish(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        with broker_errors(topic):
            await self._app.producer.send_and_wait(topic, key.encode(), value, None, None, headers)
        metrics.records_published.add(1, {"topic": topic})


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        # Faust reads no records here (``UploadsConsumer`` does), but its consumer must
        # subscribe to something: its leader topic, in a group of its own, apart from the
        # uploads reader's (the two use different assignors and could not share one).
        f"{settings.consumer_group}-host",
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=broker_credentials(settings),
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=max(0.1, settings.broker_session_timeout / 3),
        producer_max_batch_size=settings.producer_max_batch_size or 16384,
        producer_acks=-1,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        # Faust's own table data, which it would otherwise put in the working directory.
        datadir=str(settings.state_dir / "faust"),
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=settings.worker_web_port > 0,
        web_bind=settings.bind_host,
        web_host=settings.bind_host,
        web_port=settings.worker_web_port or 6066,
    )
    # Built on first use, inside Faust's event loop, once for all records in flight.
    pipeline = Lazy(lambda: _build_pipeline(settings, app))

    async def moderate(delivery: Delivery) -> None:
        await _until_handled(await pipeline.get(), delivery)

    # Upload events and bucket notifications, both through the one pipeline (told apart by topic).
    reader = UploadsConsumer(settings, [settings.topic_uploads, settings.topic_s3_notifications], moderate)

    @app.service
    class Consuming(mode.Service):
        """The reader's life inside Faust's: started with the app, drained and committed at stop."""

        _stop: asyncio.Event
        _running: asyncio.Future[None]

        async def on_start(self) -> None:
            self._stop = asyncio.Event()
            # A consumer that fails (the broker unreachable at start, say) is made again.
            self._running = asyncio.ensure_future(
                retrying(lambda: reader.run(self._stop), "kafka", transient=(Exception,), cap=10.0)
            )

        async def on_stop(self) -> None:
            self._stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._running, STOP_DRAIN_SECONDS + 3)

    state = aioredis.Redis.from_url(settings.redis_url)
    audit = AuditLog(state)
    erased = ErasedImages(state, settings.score_cache_ttl_seconds)
    erased_after = [time.time()]  # the score cache starts empty: older erasures are not in it

    @app.timer(interval=settings.policy_refresh_seconds)  # type: ignore[untyped-decorator]
    async def refresh() -> None:
        """Every few seconds: policies, raised audit rates, and the serving model version."""
        if (current := pipeline.built()) is not None:
            changed = current.policies.refresh()
            if changed:
                await audit.append("worker", "policy_change", **changed)
            # The drift monitor raises a tenant's audit rate while one of its labels drifts.
            with contextlib.suppress(redis.exceptions.RedisError):
                current.raised_audit_rates = await raised_audit_rates(state)
                # Erased images' scores and embeddings leave this worker's memory too.
                digests, erased_after[0] = await erased.since(erased_after[0])
                if dropped := current.score_cache.drop(digests):
                    log.info("erased images dropped from the score cache", extra={"images": dropped})
            # Triton away: the reuse of scores goes on under the version last seen.
            with contextlib.suppress(Exception):
                await current.check_serving_model()

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        # Ready (200) only once it owns a partition of the topics it moderates.
        assignment = reader.assignment()
        working = sorted(f"{tp.topic}:{tp.partition}" for tp in assignment)
        assigned = working
        return web.json(
            {"status": "ok" if working else "starting", "assigned": assigned}, status=200 if working else 503
        )

    @app.page("/livez")
    async def livez(web: View, request: Request) -> Response:
        # Alive while it serves at all: a worker with no partition (more workers than
        # partitions) is idle, not broken, and must not be restarted.
        return web.json({"status": "alive"})

    @app.page("/metrics")
    async def prometheus(web: View, request: Request) -> Response:
        # Passed as a header: aiohttp refuses a charset inside content_type.
        return web.bytes(metrics.render(), headers={"content-type": metrics.CONTENT_TYPE})

    return app


async def _build_pipeline(settings: Settings, app: faust.App) -> Pipeline:
    configure_tracing("modstream-worker", settings.trace_exporter)
    scorer = TritonScorer(settings.triton_grpc, settings.triton_model, settings.inference_timeout)
    # Policies are checked against the labels of the model Triton actually serves.
    labels = await retrying(scorer.labels, "triton")
    policies = PolicyStore(settings.policies_dir, labels)
    log.info("pipeline ready", extra={"model_labels": labels, "policies": policies.current.versions})
    publisher = FaustPublisher(app)
    # Banks are read whole before the first event is decided, then followed change by change.
    follower = BankFollower(settings)
    banks = await retrying(follower.load, "kafka")
    _following.add(asyncio.ensure_future(follower.follow()))
    shadow_model = settings.triton_model + SHADOW_SUFFIX  # set up by `modstream model shadow`
    shadow_scorer = TritonScorer(settings.triton_grpc, shadow_model, settings.inference_timeout)
    return Pipeline(
        settings=settings,
        store=ObjectStore(settings, pool_size=settings.worker_concurrency),
        scorer=scorer,
        decided=DecidedEvents(settings),
        publisher=publisher,
        policies=policies,
        banks=banks,
        shadow=Shadow(shadow_scorer, publisher, settings.topic_shadow, settings.shadow_max_in_flight),
        # For the blocks of a policy with saliency_on_block: maps kept in the archive's bucket.
        explainer=explainer_for(settings),
    )


async def _until_handled(pipeline: Pipeline, delivery: Delivery) -> None:
    """Handle one event, again and again if something unforeseen escapes the pipeline (a
    record the broker refuses for good): the agent must not die, and the event must not be
    skipped, since its offset is committed once this returns."""
    await retrying(lambda: pipeline.handle(delivery), "pipeline", transient=(Exception,), cap=30.0)


def broker_credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """The same TLS and SASL settings the other Kafka clients use (``core.kafka``), in Faust's terms."""
    options = connection_options(settings)
    if "sasl_mechanism" in options:
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            ssl_context=options.get("ssl_context"),
            mechanism=options["sasl_mechanism"],
        )
    if "ssl_context" in options:
        return faust.SSLCredentials(options["ssl_context"])
    return None


def run_worker(settings: Settings, loglevel: str = "warning") -> None:
    """Run the worker in this process until it is stopped (SIGINT/SIGTERM)."""
    configure_logging(root=False)
    metrics.configure_metrics("modstream-worker")
    app = create_app(settings)
    app.finalize()
    faust.Worker(app, loglevel=loglevel).execute_from_commandline()
