"""What the guided first run does and says: which files it uploads, for which tenant, how it
follows their decisions, and the closing lines that point at the human side.

The servers, the upload and the queues are reached through what the CLI passes in: this
room imports no other capability.
"""

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modstream.core.events import ModerationDecision
from modstream.demo.samples import write_samples

# Its policy (config/policies/tenants/demo.yaml) sends a few of the harmless sample photos
# to review, so that the dashboard has jobs to show.
TENANT = "demo"
REVIEWER = "demo-reviewer"
ADMIN = "admin"
BROKEN = ("truncated.jpg", "not-an-image.jpg")


def sample_files(state_dir: Path, count: int) -> list[Path]:
    """``count`` files to upload: the sample photos, one format after another (photo i
    starts at its i-th variant, so the first dozen are a dozen photos in every format),
    then two broken files."""
    folder = state_dir / "samples"
    by_photo = list(write_samples(folder, state_dir / "cache").values())
    rounds = (
        [files[(i + r) % len(files)] for i, files in enumerate(by_photo) if r < len(files)]
        for r in range(max(map(len, by_photo)))
    )
    photos = list(itertools.chain.from_iterable(rounds))[: max(1, count - len(BROKEN))]
    broken = folder / "broken"
    broken.mkdir(exist_ok=True)
    a_jpeg = next(p for p in itertools.chain.from_iterable(by_photo) if p.suffix == ".jpg")
    (broken / "truncated.jpg").write_bytes(a_jpeg.read_bytes()[:4096])
    (broken / "not-an-image.jpg").write_text("<html><body>this is not a photo</body></html>")
    return [*photos, *(broken / name for name in BROKEN)][:count]


def first_admin(users_file: Path, add_admin: Callable[[str, str], object]) -> str | None:
    """A first dashboard admin (``add_admin(name, password)``) with a random password,
    returned, unless there are users already."""
    if users_file.is_file():
        return None
    password = secrets.token_urlsafe(12)
    add_admin(ADMIN, password)
    return password


@dataclass
class Tally:
    """The demo's decisions so far: one per event, the first that arrived."""

    expected: int
    outcomes: dict[str, int] = field(default_factory=dict)
    # event id -> the review queue its image went to (a review, or an audit sample)
    in_review: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def add(self, decision: ModerationDecision) -> bool:
        """Count a decision; False when its event was already counted (a redelivery)."""
        if decision.event_id in self.seen:
            return False
        self.seen.add(decision.event_id)
        self.outcomes[decision.decision.value] = self.outcomes.get(decision.decision.value, 0) + 1
        if decision.review_queue is not None:
            self.in_review[decision.event_id] = decision.review_queue
        return True

    @property
    def complete(self) -> bool:
        return len(self.seen) >= self.expected


async def follow_decisions(
    decisions: AsyncIterable[ModerationDecision],
    expected: int,
    on_new: Callable[[ModerationDecision], None],
    timeout: float,
) -> Tally:
    """Count the demo's decisions as they arrive (``decisions`` holds only the demo's
    events), calling ``on_new`` for each first one, until all ``expected`` or ``timeout``."""
    tally = Tally(expected)

    async def follow() -> None:
        async for decision in decisions:
            if tally.add(decision):
                on_new(decision)
            if tally.complete:
                return

    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(follow(), timeout)
    finally:
        # Closed now, while the loop runs: left to asyncio.run's shutdown, the generators
        # beneath it (the Kafka consumer) are closed out of order, with an error printed.
        if isinstance(decisions, AsyncGenerator):
            await decisions.aclose()
    return tally


async def wait_for_jobs(job_ids: set[str], has_job: Callable[[str], Awaitable[bool]], timeout: float) -> set[str]:
    """Wait until each id is a review job (the dashboard's intake makes them from the
    review requests); returns the ids still without a job at ``timeout``."""
    missing = set(job_ids)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        missing = {job_id for job_id in missing if not await has_job(job_id)}
        if not missing or asyncio.get_running_loop().time() >= deadline:
            return missing
        await asyncio.sleep(0.5)


def closing_lines(
    tally: Tally,
    waiting: Mapping[str, int],
    missing_jobs: int,
    dashboard_url: str,
    password: str | None,
    seeded: int = 0,
) -> list[str]:
    """What the demo says at the end (rich markup). ``waiting`` is each review queue's
    pending jobs as the dashboard reads them from Redis, after this run's jobs arrived."""
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(tally.outcomes.items()))
    lines = [f"\n[bold]{len(tally.seen)} of {tally.expected} images decided[/bold]: {summary}"]
    login = f"user {ADMIN}, password {password}" if password else "your dashboard users"
    lines.append(f"Reviewer dashboard: {dashboard_url} ({login})")
    by_queue: dict[str, int] = {}
    for queue in tally.in_review.values():
        by_queue[queue] = by_queue.get(queue, 0) + 1
    for queue, mine in sorted(by_queue.items()):
        lines.append(
            f'  {mine} of these images went to human review in the queue "{queue}" '
            f"(jobs waiting there now: {waiting.get(queue, 0)}); open it and press Start reviewing"
        )
    if not by_queue:
        lines.append("  none of these images went to human review this time")
    if seeded:
        lines.append(
            f"  {seeded} of them were approved by the demo's own reviewer ({REVIEWER}, through the JSON API): "
            "every sample photo is harmless, so these verdicts are true, and the quality loop measures the "
            "decisions against them once the archiver has written them (every 30 s):\n"
            f"    modstream quality report --tenant {TENANT}"
        )
    if missing_jobs:
        lines.append(f"  [yellow]review jobs not in the queues yet: {missing_jobs}; see the dashboard's log[/yellow]")
    lines.append(
        "The stack, the worker and the dashboard keep running. Next:\n"
        "  modstream upload PATH… --tenant acme    upload your own images\n"
        "  modstream decisions --follow            watch decisions arrive\n"
        "  modstream bench --images 500            measure throughput and latency\n"
        "  modstream stack down                    stop everything"
    )
    return lines
