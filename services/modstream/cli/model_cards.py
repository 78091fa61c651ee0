"""What model cards are made from, composed: the quality room's measurement of the archive and
its drift monitor's state, in the models room's terms (``models.served_cards.EvidenceSource``),
for ``modstream model card`` and the dashboard's Model cards page alike.

Imported by those commands only when they run: it loads DuckDB, numpy and redis.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import redis.asyncio as aioredis
import redis.exceptions

from modstream.core.evidence import Period, Sample
from modstream.core.lake import snapshot_ids
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.models.cards import DriftEvidence, DriftReading, DriftRule, LabelEvidence, MadeFrom
from modstream.models.served_cards import Quality
from modstream.quality.archived import measure
from modstream.quality.drift_monitor import DriftMonitor, Status

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The tables a card's quality figures are read from: a commit to either can change them.
TABLES = ("decisions", "verdicts")
NOTICES = "THIRD_PARTY_NOTICES"


def notices_path(settings: Settings) -> Path:
    """THIRD_PARTY_NOTICES beside the model repository, else in the checkout."""
    beside = settings.model_repository.parent / NOTICES
    return beside if beside.is_file() else PROJECT_ROOT / NOTICES


def covered(sample: Sample, label: str, model_version: str) -> tuple[datetime | None, datetime | None]:
    """When the first and the last decision of ``model_version`` scoring ``label`` that has a
    verdict happened: the period a label's figures cover."""
    if sample.occurred_at is None or label not in sample.labels:
        return None, None
    counted = (sample.model_version == model_version) & sample.labelled & ~np.isnan(sample.labels[label].score)
    times = sample.occurred_at[counted]
    if not times.size:
        return None, None
    return EPOCH + timedelta(microseconds=int(times.min())), EPOCH + timedelta(microseconds=int(times.max()))


def reading_of(status: Status) -> tuple[str, DriftReading]:
    """A drift series' status as a card reads it, with its decisions' model version."""
    newest = status.newest
    return status.series.model_version, DriftReading(
        tenant=status.series.tenant,
        label=status.series.label,
        drifting=status.drifting,
        since=status.since,
        psi=None if newest is None else newest[1].psi,
        window=None if newest is None else newest[0],
    )


class ArchiveEvidence:
    """Reviewers' verdicts over ``period`` and the drift monitor's state now."""

    def __init__(self, settings: Settings, period: Period | None = None) -> None:
        self.settings = settings
        self.period = period or Period()

    def snapshots(self) -> dict[str, int | None]:
        return snapshot_ids(self.settings, TABLES)

    def quality(self) -> Quality:
        since, until = self.period.since, self.period.until
        try:
            snapshots = self.snapshots()  # before the measurement: what it read is this or newer
            measured = measure(self.settings, self.period)
        except (OSError, duckdb.Error) as exc:
            return Quality(rows=[], since=since, until=until, unavailable=[f"the archive: {exc}"])
        rows = []
        for r in measured.report.labels:
            first, last = covered(measured.sample, r.label, r.model_version)
            at = r.at_block
            rows.append(
                (
                    r.model_version,
                    LabelEvidence(r.label, r.labelled, r.positives, at.threshold, at.precision, at.recall, first, last),
                )
            )
        made_from = MadeFrom(snapshots=snapshots, verdicts=int(measured.sample.labelled.sum()))
        return Quality(rows=rows, since=since, until=until, made_from=made_from)

    async def drift(self) -> DriftEvidence | str:
        client = aioredis.Redis.from_url(self.settings.redis_url)
        monitor = DriftMonitor(client, self.settings)
        try:
            statuses = await monitor.statuses(datetime.now(UTC))
        except (OSError, redis.exceptions.RedisError) as exc:
            return f"the drift monitor's state in Redis: {exc}"
        finally:
            await client.aclose()
        rule = DriftRule(alert=monitor.rule.alert, calm=monitor.rule.calm)
        return DriftEvidence(rule=rule, readings=[reading_of(status) for status in statuses])
