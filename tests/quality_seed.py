"""Shared by the quality page's tests: a tenant's reviewed traffic, written straight into a
private archive as the archiver writes it, and tallied for drift as the archiver's drift
monitor tallies it."""

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from modstream.core import lake
from modstream.core.archive import TABLES
from modstream.core.events import ModerationDecision, Outcome, Record
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.quality.drift_monitor import DriftMonitor

from tests.archive import decision, second_review, verdict_for

PER_HOUR = 300
# A reference of three hourly windows, and a hundred decisions enough to compare a window
# (fewer, and PSI over 20 bins is mostly noise).
DRIFT = {"drift_window_seconds": 3600.0, "drift_reference_windows": 3, "drift_min_count": 100}
# High enough that a day's allow and block decisions are audited in numbers: the estimates
# then have intervals, not "not enough data".
AUDIT_RATE = 0.3


def reviewed_traffic(tenant: str, hours: int, seed: int) -> list[tuple[str, Record]]:
    """(table, record): ``PER_HOUR`` decisions an hour over the last ``hours``, whose nsfw
    scores move up for the last third, audited at ``AUDIT_RATE``; a verdict on each review and
    audit sample, and a blind second review of every other one (agreeing about 85 % of the time)."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(hours=hours)
    count = hours * PER_HOUR
    records: list[tuple[str, Record]] = []
    for i in range(count):
        nsfw = rng.betavariate(4, 2) if i > 2 * count // 3 else rng.random()
        automatic = decision(rng, start + timedelta(hours=i / PER_HOUR), tenant, nsfw=nsfw)
        audited = automatic.decision is not Outcome.REVIEW and rng.random() < AUDIT_RATE
        automatic = automatic.model_copy(update={"audit_rate": AUDIT_RATE, "audit_sample": audited})
        records.append(("decisions", automatic))
        if automatic.decision is Outcome.REVIEW or automatic.audit_sample:
            first = verdict_for(automatic, rng)
            records.append(("verdicts", first))
            if i % 2:
                records.append(("verdicts", second_review(first, rng)))
    return records


def write_archive(settings: Settings, records: list[tuple[str, Record]]) -> None:
    """One commit per table, into the tables the archiver writes."""
    ObjectStore(settings).ensure_bucket(settings.archive_bucket)
    groups: defaultdict[str, list[object]] = defaultdict(list)
    for table, record in records:
        groups[table].append(record)
    for table, rows in groups.items():
        lake.open_table(settings, TABLES[table]).append(TABLES[table].rows(rows))


def decisions_of(records: list[tuple[str, Record]]) -> list[ModerationDecision]:
    return [r for table, r in records if table == "decisions" and isinstance(r, ModerationDecision)]


async def tally_drift(settings: Settings, records: list[tuple[str, Record]]) -> None:
    """The decisions through the drift monitor, as the archiver hands it each batch."""
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        await DriftMonitor(client, settings).archived("decisions", decisions_of(records))
    finally:
        await client.aclose()
