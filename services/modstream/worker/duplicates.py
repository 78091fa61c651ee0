"""Scores of images already seen, by the SHA-256 of their bytes: a viral re-upload is not
sent to Triton again while the same model serves.

An entry is good only for the model version that made it: the newest version Triton
answered with (a scored upload, or the worker's probe every few seconds) is the one
serving, so a deploy or a rollback makes every older entry miss, duplicates or not.
Bounded in size (least recently used goes first) and in time (TTL).
"""

import time
from collections import OrderedDict
from collections.abc import Callable

from modstream.core.inference import Scores


class ScoreCache:
    def __init__(self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Scores]] = OrderedDict()
        self._serving: str | None = None
        self.hits = 0
        self.misses = 0

    def get(self, sha256: str) -> Scores | None:
        found = self._entries.get(sha256)
        if found is not None:
            stored_at, scores = found
            if self._clock() - stored_at <= self.ttl_seconds and scores.model.version == self._serving:
                self._entries.move_to_end(sha256)
                self.hits += 1
                return scores
            del self._entries[sha256]
        self.misses += 1
        return None

    def serving(self, version: str) -> None:
        self._serving = version

    def put(self, sha256: str, scores: Scores) -> None:
        self._serving = scores.model.version
        if self.max_entries <= 0:
            return
        self._entries[sha256] = (self._clock(), scores)
        self._entries.move_to_end(sha256)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, sha256s: list[str]) -> int:
        """Forget the scores of these images (erased); how many were held."""
        return sum(self._entries.pop(sha256, None) is not None for sha256 in sha256s)

    def __len__(self) -> int:
        return len(self._entries)
