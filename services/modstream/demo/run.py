"""The guided first run from start to end: a first admin, the stack, the sample uploads,
their decisions as they arrive, the review queues, the closing words.

The stack, the upload, the decision feed and the review queues belong to other rooms: the
composer passes them in as ``Operations``, and how each stage shows itself as ``Show``.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modstream.core.events import ImageUploaded, ModerationDecision
from modstream.demo.guide import (
    REVIEWER,
    TENANT,
    Tally,
    closing_lines,
    first_admin,
    follow_decisions,
    sample_files,
    wait_for_jobs,
)
from modstream.demo.verdicts import seed_verdicts

# How long the dashboard's intake gets to make a review job of each review request of the run.
JOBS_TIMEOUT = 60.0
# The run's jobs the demo's reviewer answers; the others wait for the person at the dashboard.
SEEDED_SHARE = 0.5


class QueueCount(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def pending(self) -> int: ...


class ReviewQueues(Protocol):
    """The review queues, read as the dashboard reads them."""

    async def job(self, job_id: str) -> object | None: ...

    async def queue_stats(self) -> Sequence[QueueCount]: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Operations:
    """What the run drives, each from the room that owns it."""

    users_file: Path
    add_admin: Callable[[str, str], object]  # name, password
    start_stack: Callable[[], None]  # the servers, the worker and the dashboard
    upload: Callable[[list[Path], str], list[ImageUploaded]]  # files, tenant
    decisions: Callable[[Collection[str]], AsyncIterator[ModerationDecision]]  # of these event ids, followed
    review: Callable[[], ReviewQueues]  # made in the event loop that uses it, stopped after
    reviewer_token: Callable[[str], str]  # an API token for this reviewer, made a user if new
    dashboard_url: str


@dataclass(frozen=True)
class Show:
    stage: Callable[[str], None]
    # While open, shows each decision it is given; the mapping names each event's image.
    decisions: Callable[[Mapping[str, str]], AbstractContextManager[Callable[[ModerationDecision], None]]]


def run_demo(
    operations: Operations, show: Show, state_dir: Path, images: int, timeout: float
) -> tuple[Tally, list[str]]:
    """Run the demo with ``images`` sample files, waiting up to ``timeout`` seconds for their
    decisions; returns the tally and the closing words (rich markup)."""
    password = first_admin(operations.users_file, operations.add_admin)
    operations.start_stack()
    samples = sample_files(state_dir, images)
    show.stage("uploading sample images")
    events = operations.upload(samples, TENANT)
    show.stage("decisions, as the worker publishes them")
    names = {e.event_id: e.metadata.get("filename", e.key) for e in events}
    with show.decisions(names) as on_new:
        tally = asyncio.run(follow_decisions(operations.decisions(names), len(names), on_new, timeout))
    missing, waiting, seeded = asyncio.run(_review(operations, tally.in_review))
    return tally, closing_lines(tally, waiting, len(missing), operations.dashboard_url, password, seeded)


async def _review(operations: Operations, jobs: Mapping[str, str]) -> tuple[set[str], dict[str, int], int]:
    """Once the dashboard has made a review job of each (or at ``JOBS_TIMEOUT``): the jobs
    still missing, each queue's pending jobs after the demo's reviewer answered some of the
    others, and how many it answered."""
    review = operations.review()

    async def has_job(job_id: str) -> bool:
        return await review.job(job_id) is not None

    try:
        missing = await wait_for_jobs(set(jobs), has_job, JOBS_TIMEOUT)
        ready = {job_id: queue for job_id, queue in jobs.items() if job_id not in missing}
        seeded = 0
        if ready:
            token = operations.reviewer_token(REVIEWER)
            seeded = await seed_verdicts(operations.dashboard_url, token, ready, SEEDED_SHARE)
        return missing, {queue.name: queue.pending for queue in await review.queue_stats()}, seeded
    finally:
        await review.stop()
