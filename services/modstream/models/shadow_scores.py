"""The shadow topic read to its end: how the version under shadow scored beside the serving one."""

import asyncio
from collections.abc import Callable
from datetime import datetime

from modstream.core.events import ReviewVerdict, ShadowScore
from modstream.core.kafka import read_records
from modstream.core.label_since import CountingFrom, counting_from, definition_times
from modstream.core.settings import Settings
from modstream.models.compare import DEFAULT_AT, Comparison, compare


def shadow_comparisons(
    settings: Settings,
    idle_seconds: float,
    *,
    at: float = DEFAULT_AT,
    since: datetime | None = None,
    warn: Callable[[str], None] = lambda _: None,
) -> tuple[list[Comparison], dict[str, CountingFrom]]:
    """``compare`` over every record on the shadow topic; the reading ends once none has
    arrived for ``idle_seconds``. When the shadow scores labels the serving model does not,
    the verdicts topic is read too (keeping the verdicts on shadowed images), and each such
    label's verdicts count from its definition in the label registry or ``since``. Also
    returns, per new label, from when its verdicts counted."""

    async def collect() -> tuple[list[Comparison], dict[str, CountingFrom]]:
        records = [r async for r in read_records(settings, settings.topic_shadow, ShadowScore, False, idle_seconds)]
        new = {label for r in records for label in r.shadow_scores.keys() - r.serving_scores.keys()}
        if not new:
            return compare(records), {}
        shadowed = {r.event_id for r in records}
        verdicts = [
            v
            async for v in read_records(settings, settings.topic_review_verdicts, ReviewVerdict, False, idle_seconds)
            if v.event_id in shadowed
        ]
        defined = await definition_times(settings, new, warn)
        starts = {label: counting_from(defined.get(label), since) for label in sorted(new)}
        moments = {label: start.at for label, start in starts.items() if start.at is not None}
        return compare(records, verdicts, since=moments, at=at), starts

    return asyncio.run(collect())
