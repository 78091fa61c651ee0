"""The shadow topic read to its end: how the version under shadow scored beside the serving one."""

import asyncio

from modstream.core.events import ShadowScore
from modstream.core.kafka import read_records
from modstream.core.settings import Settings
from modstream.models.compare import Comparison, compare


def shadow_comparisons(settings: Settings, idle_seconds: float) -> list[Comparison]:
    """``compare`` over every record on the shadow topic; the reading ends once none has
    arrived for ``idle_seconds``."""

    async def collect() -> list[ShadowScore]:
        return [r async for r in read_records(settings, settings.topic_shadow, ShadowScore, False, idle_seconds)]

    return compare(asyncio.run(collect()))
