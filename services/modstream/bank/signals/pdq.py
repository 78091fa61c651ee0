"""Meta's PDQ perceptual hash: 256 bits, matched by Hamming distance within each bank's
``distance``, when the image's hash quality reaches the bank's ``min_quality``.

Nothing here decodes an image: Triton's preprocess hashes PDQ from the decode it does for the
models (``core/inference``), so ``hash`` answers None and the pipeline adds the hash after
inference. The index is ``bank/index.PdqIndex`` (faiss scans, multi-index hashing at scale).
"""

from collections.abc import Sequence

import numpy as np

from modstream.bank.index import PdqIndex, pdq_codes
from modstream.bank.signals.base import IndexId, Query, SignalIndex, SignalType, hex_digest
from modstream.core.events import Bank, ImageHashes, PdqHash

DIGITS = 64


class PdqSignal(SignalType):
    name = "pdq"
    field = "pdq"
    max_distance = 31  # HMA's and ThreatExchange's default; a bank sets its own

    def validate(self, value: str) -> str:
        return hex_digest(self.name, value, DIGITS)

    def distance(self, first: str, second: str) -> int:
        return (int(first, 16) ^ int(second, 16)).bit_count()

    def threshold(self, bank: Bank) -> int:
        return bank.distance

    def index(self) -> SignalIndex:
        return _PdqIndex()

    def query_of(self, hashes: ImageHashes) -> Query | None:
        pdq = hashes.pdq
        return None if pdq is None else Query(pdq.hex, pdq.quality)

    def query(self, given: object) -> Query:
        if isinstance(given, PdqHash):
            return Query(given.hex, given.quality)
        return super().query(given)

    def examples(self) -> list[str]:
        # ThreatExchange's PdqSignal.get_examples(): pdq/data/bridge-mods, two edits of one photo.
        return [
            "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
            "f8f8f0cee0f4a84f06370a2a038f63f0b36e26d596621e1d33e6b39c4e9c9b22",
        ]


class _PdqIndex(SignalIndex):
    def __init__(self) -> None:
        self._index = PdqIndex()

    def __len__(self) -> int:
        return len(self._index)

    def add(self, items: Sequence[tuple[IndexId, str]]) -> None:
        if items:
            ids, values = zip(*items, strict=True)
            self._index.add(np.array(ids, dtype=np.int64), pdq_codes(values))

    def remove(self, items: Sequence[tuple[IndexId, str]]) -> None:
        if items:
            self._index.remove(np.array([index_id for index_id, _ in items], dtype=np.int64))

    def search(self, value: str, max_distance: int) -> list[tuple[IndexId, int]]:
        return self._index.search(pdq_codes([value]), max_distance)[0]

    def compact(self) -> None:
        self._index.compact()
