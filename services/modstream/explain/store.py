"""Maps kept beside the decision's other artefacts: one JSON object per event, model version and
method, in the archive's bucket under ``saliency/<event id>/``.

The key is made from what the maps depend on, so it is also the cache: a map asked for again on
the review page, or made for a block decision by the worker, is found by the same key, and a
decision by another model version never gets an older version's maps.
"""

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from modstream.core.events import ModelRef, SaliencyRef
from modstream.core.settings import Settings
from modstream.core.storage import ObjectMissing, ObjectStore
from modstream.explain.served import Saliency, ServedSaliency

PREFIX = "saliency/"
MAX_BYTES = 2 * 1024 * 1024  # ~20 labels of 14x14 cells take ~60 KB


def saliency_key(event_id: str, model: ModelRef, method: str) -> str:
    digest = hashlib.sha256(f"{model.name}\n{model.version}\n{method}".encode()).hexdigest()[:20]
    return f"{event_prefix(event_id)}{digest}.json"


def event_prefix(event_id: str) -> str:
    """Where every map of one event is kept, whatever model version or method made it."""
    return f"{PREFIX}{event_id}/"


class SaliencyStore:
    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self._store = store
        self._bucket = bucket
        self._bucket_made = False

    async def get(self, event_id: str, model: ModelRef, method: str) -> Saliency | None:
        try:
            data = await self._store.aget(self._bucket, saliency_key(event_id, model, method), MAX_BYTES)
        except ObjectMissing:
            return None
        return Saliency.model_validate_json(data)

    async def put(self, event_id: str, saliency: Saliency) -> SaliencyRef:
        data = saliency.model_dump_json().encode()
        if not self._bucket_made:  # the archiver makes the bucket too; the worker may store first
            await asyncio.to_thread(self._store.ensure_bucket, self._bucket)
            self._bucket_made = True
        ref = self.ref(event_id, saliency)
        await asyncio.to_thread(self._store.put, self._bucket, ref.key, data, "application/json")
        return ref

    async def erase(self, event_ids: Iterable[str]) -> int:
        """Every map kept of these events, each version of each object (an erasure: GDPR Art.
        17); how many versions were removed."""
        removed = 0
        for event_id in sorted(set(event_ids)):
            removed += await asyncio.to_thread(self._store.erase_under, self._bucket, event_prefix(event_id))
        return removed

    def ref(self, event_id: str, saliency: Saliency) -> SaliencyRef:
        return SaliencyRef(
            bucket=self._bucket,
            key=saliency_key(event_id, saliency.model, saliency.method),
            method=saliency.method,
            labels=sorted(saliency.maps),
            seconds=saliency.seconds,
        )


@dataclass(frozen=True)
class Explained:
    saliency: Saliency
    ref: SaliencyRef
    cached: bool
    """Found kept, not made now."""


class Explainer:
    """Maps for one event's decision: kept ones when there are, else made and kept. The same
    event asked for twice at once is made once (the page's toggle, clicked twice)."""

    def __init__(self, served: ServedSaliency, kept: SaliencyStore) -> None:
        self.served = served
        self.kept = kept
        self._making: dict[str, asyncio.Task[Explained]] = {}

    async def saliency(self, event_id: str, image: bytes, model: ModelRef) -> Explained:
        method = self.served.masking.name
        key = saliency_key(event_id, model, method)
        if key not in self._making:
            self._making[key] = asyncio.ensure_future(self._find_or_make(event_id, image, model, method))
            self._making[key].add_done_callback(lambda _: self._making.pop(key, None))
        return await asyncio.shield(self._making[key])

    async def _find_or_make(self, event_id: str, image: bytes, model: ModelRef, method: str) -> Explained:
        kept = await self.kept.get(event_id, model, method)
        if kept is not None:
            return Explained(kept, self.kept.ref(event_id, kept), cached=True)
        made = await self.served.explain(image, model)
        return Explained(made, await self.kept.put(event_id, made), cached=False)

    async def document(self, event_id: str, image: bytes, model: ModelRef) -> dict[str, Any]:
        """The maps as the review page reads them (``review.web.saliency.ExplainMaps``)."""
        explained = await self.saliency(event_id, image, model)
        return {**explained.saliency.model_dump(mode="json"), "cached": explained.cached}

    async def close(self) -> None:
        await self.served.close()


def explainer_for(settings: Settings) -> Explainer:
    """Maps from the settings' Triton, kept in the archive's bucket."""
    served = ServedSaliency(settings.triton_grpc, settings.inference_timeout)
    return Explainer(served, SaliencyStore(ObjectStore(settings), settings.archive_bucket))


def maps_on_demand(settings: Settings) -> Callable[[str, bytes, ModelRef], Awaitable[dict[str, Any]]]:
    """``Explainer.document`` for the dashboard, its Triton client made in the server's event
    loop at the first map asked for (a gRPC channel belongs to the loop it is made in)."""
    made: list[Explainer] = []

    async def document(event_id: str, image: bytes, model: ModelRef) -> dict[str, Any]:
        if not made:
            made.append(explainer_for(settings))
        return await made[0].document(event_id, image, model)

    return document
