"""The PDQ match index: every bank entry's PDQ hash, changed live, searched by Hamming radius.

Layout. A main part, changed only by merges, and a recent part: the rows added since the
last merge, appended in place and scanned exactly. Removing an id marks its row dead;
adding an id that exists removes its old row first. When recent rows and dead rows reach
``merge_at``, a thread builds a new main part from the live rows of the old one and of the
recent part, which is frozen meanwhile (still searched, still removable from) while a
fresh recent part takes new adds; the owner's next call installs the new main part. An add
or a remove costs tens of microseconds, and no lookup waits for a rebuild. For a bulk load,
add many rows per call and ``compact()``.

The main part, by size (one core, random 256-bit hashes, radius 31; see
docs/hash-bank-index.md for the runs):

- up to ``scan_up_to`` rows (default 2**20): an exact scan in two halves. faiss scans the
  first 128 bits of every row, and only the rows within the radius there are checked on
  the other 128: a row within r bits of the query is within r on either half, so none is
  lost, and a random row differs in ~64 bits of a half, so almost none is checked. About
  1,400 lookups/s at 1M where faiss's 256-bit flat scan does 800-970; 41 bytes a hash.
- above: multi-index hashing. The 256 bits split into 16 chunks of 16 bits, with one table
  per chunk from the chunk's value to the rows that have it; a query takes the rows that
  share any of its 16 chunk values and checks them. A row within 15 bits of the query
  differs in at most 15 chunks, so it shares one: exact for radius <= 15. Further out a
  row is found when its differing bits leave one chunk whole: for random flips 99.94 % at
  20 bits, 98.7 % at 25, 91 % at 31. Probing each chunk's 16 one-bit neighbours too would
  make it exact to 31, but checks 17 times as many rows: 1,300 lookups/s at 10M against
  12,000-16,000 (75 for the flat scan). About 106 bytes a hash.

Not thread-safe: one thread (or one event loop) calls the methods; merges run in their own.
faiss's scans start an OpenMP team per call: looking up an image at a time, a team of more
than one thread only waits, on busy cores, for its slowest member (this module's tests: 15 s
instead of 0.3). So ``search`` runs faiss on ``threads`` (1 by default) and gives the calling
thread its own setting back after (OpenMP's count is per thread): neither making an index
nor searching it changes the count anything else in the process runs faiss with.
"""

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, TypeVar

import faiss
import numpy as np
import numpy.typing as npt

CODE_BYTES = 32
HALF = CODE_BYTES // 2
CHUNKS = 16  # of 16 bits each
KEYS = 1 << 16
_HEX = re.compile(r"[0-9a-fA-F]{64}")
# Up to here the exact scan does >= 1,000 lookups/s on one core at <= 64 bytes a hash.
SCAN_UP_TO = 1 << 20
# Every lookup scans the recent part in full: 32K rows cost ~17 µs, and at 10M a merge (a
# few seconds of background work) comes at most once per 32K changes.
MERGE_AT = 32_768

Ids = npt.NDArray[np.int64]
Codes = npt.NDArray[np.uint8]
Rows = npt.NDArray[np.int64]
Distances = npt.NDArray[np.int64]
Alive = npt.NDArray[np.bool_]
Found = tuple[int, Rows, Distances]  # a query's index, the rows within the radius, their distances
G = TypeVar("G", bound=np.generic)


def pdq_codes(hexes: Sequence[str]) -> Codes:
    """PDQ hashes as written (64 hex digits, big-endian) to uint8 codes of shape (n, 32)."""
    if isinstance(hexes, str):
        raise TypeError("pdq_codes takes a sequence of hashes, not one string")
    for position, text in enumerate(hexes):
        if not isinstance(text, str) or not _HEX.fullmatch(text):
            raise ValueError(f"PDQ hash #{position} is not 64 hex digits: {text!r}")
    return np.frombuffer(bytearray.fromhex("".join(hexes)), dtype=np.uint8).reshape(len(hexes), CODE_BYTES)


def pdq_hex(code: npt.NDArray[np.uint8]) -> str:
    """One code (uint8, 32 bytes) as the 64 lowercase hex digits PDQ tools write."""
    code = np.asarray(code)
    if code.dtype != np.uint8 or code.shape != (CODE_BYTES,):
        raise ValueError(f"a PDQ code is uint8 of shape (32,), not {code.dtype} {code.shape}")
    return code.tobytes().hex()


class PdqIndex:
    """PDQ codes by int64 id; ``search`` returns every id within a Hamming radius.

    Exact at any radius while the main part holds at most ``scan_up_to`` rows, and for the
    rows added since the last merge. With a larger main part: exact for radius <= 15; for
    16..31 it finds every row that shares a whole 16-bit chunk with the query (all within
    15 bits, 99.94 % of random 20-bit flips, 91 % at 31; module docstring). ``threads``:
    faiss's OpenMP threads in a search, the caller's own count given back after it.
    """

    def __init__(self, *, scan_up_to: int = SCAN_UP_TO, merge_at: int = MERGE_AT, threads: int = 1) -> None:
        self._scan_up_to = scan_up_to
        self._merge_at = merge_at
        self._threads = threads
        self._main = _Main(np.empty(0, np.int64), _Scan(np.empty((0, CODE_BYTES), np.uint8)))
        # The last takes adds; the ones before it are frozen for a merge (or kept after one failed).
        self._recents = [_Recent()]
        self._merge: _Merge | None = None
        # Ids added or removed while a merge runs: their rows in its snapshot are stale.
        self._touched: list[Ids] = []
        self._live = 0

    def __len__(self) -> int:
        return self._live

    @property
    def merging(self) -> bool:
        """Whether a merge is building a new main part (lookups go on meanwhile)."""
        return self._merge is not None and not self._merge.done()

    def add(self, ids: npt.NDArray[np.int64], codes: npt.NDArray[np.uint8]) -> None:
        """Add or replace entries; for an id given twice, the last code wins."""
        ids, codes = _checked_ids(ids), _checked_codes(codes)
        if len(ids) != len(codes):
            raise ValueError(f"{len(ids)} ids for {len(codes)} codes")
        if len(ids) > 1:
            reversed_first = np.unique(ids[::-1], return_index=True)[1]
            last = np.sort(len(ids) - 1 - reversed_first)
            ids, codes = ids[last], codes[last]
        replaced = self._kill(ids)
        self._recents[-1].append(ids, codes)
        self._live += len(ids) - replaced
        if self._merge is not None:
            self._touched.append(ids)
        self._install()
        self._maybe_merge()

    def remove(self, ids: npt.NDArray[np.int64]) -> None:
        """Remove entries by id; ids not in the index are ignored."""
        ids = np.unique(_checked_ids(ids))
        self._live -= self._kill(ids)
        if self._merge is not None:
            self._touched.append(ids)
        self._install()
        self._maybe_merge()

    def search(self, codes: npt.NDArray[np.uint8], radius: int) -> list[list[tuple[int, int]]]:
        """For each query row, every (id, distance) with distance <= radius, nearest first
        (then by id). Exact or not as the class docstring says."""
        queries = _checked_codes(codes)
        if radius < 0:
            raise ValueError(f"radius must be >= 0, not {radius}")
        self._install()
        found: list[list[tuple[Ids, Distances]]] = [[] for _ in range(len(queries))]
        with _faiss_threads(self._threads):
            for part in self._parts():
                if not len(part.ids):
                    continue
                for query, rows, distances in part.find(queries, radius):
                    live = part.alive[rows]
                    found[query].append((part.ids[rows[live]], distances[live]))
        results: list[list[tuple[int, int]]] = []
        for pieces in found:
            if not pieces:
                results.append([])
                continue
            ids = np.concatenate([p[0] for p in pieces])
            distances = np.concatenate([p[1] for p in pieces])
            order = np.lexsort((ids, distances))
            results.append(list(zip(ids[order].tolist(), distances[order].tolist(), strict=True)))
        return results

    def memory_bytes(self) -> int:
        """Bytes of every array the index holds (a merge's work in progress aside)."""
        return self._main.nbytes() + sum(r.nbytes() for r in self._recents) + sum(t.nbytes for t in self._touched)

    def compact(self) -> None:
        """Merge every recent add and remove into the main part now, and wait for it: for a
        bulk load, a benchmark or a test; merges otherwise start on their own."""
        while self._merge is not None or len(self._recents) > 1 or self._recents[-1].count or self._main.dead:
            if self._merge is None:
                self._start_merge()
            assert self._merge is not None
            self._merge.wait()
            self._install()

    def _kill(self, ids: Ids) -> int:
        killed = 0
        for part in self._parts():
            rows = part.rows_of(ids)
            part.kill(rows)
            killed += len(rows)
        return killed

    def _parts(self) -> "list[_Part]":
        return [self._main, *self._recents]

    def _maybe_merge(self) -> None:
        pending = sum(r.count for r in self._recents) + self._main.dead
        if self._merge is None and pending >= self._merge_at:
            self._start_merge()

    def _start_merge(self) -> None:
        self._recents.append(_Recent())
        frozen = self._parts()[:-1]
        # Copies: removes go on marking rows dead in the parts being searched meanwhile.
        self._merge = _Merge([(part, part.alive.copy()) for part in frozen], self._scan_up_to)

    def _install(self) -> None:
        merge = self._merge
        if merge is None or not merge.done():
            return
        self._merge = None
        touched = np.unique(np.concatenate(self._touched)) if self._touched else np.empty(0, np.int64)
        self._touched = []
        if merge.error is not None:
            # Nothing is lost: the frozen parts are still here and the next merge takes them.
            raise RuntimeError("merging the PDQ index failed") from merge.error
        assert merge.result is not None
        main = merge.result
        main.kill(main.rows_of(touched))
        self._main = main
        del self._recents[: merge.frozen]
        self._maybe_merge()  # adds that came during the merge may be due already


class _Part(Protocol):
    @property
    def ids(self) -> Ids: ...

    @property
    def alive(self) -> Alive: ...

    def codes(self) -> Codes: ...

    def rows_of(self, ids: Ids) -> Rows:
        """The live rows holding these (unique) ids."""
        ...

    def kill(self, rows: Rows) -> None: ...

    def find(self, queries: Codes, radius: int) -> list[Found]: ...

    def nbytes(self) -> int: ...


class _Scan:
    """Exact scan in two halves of 128 bits (module docstring)."""

    def __init__(self, codes: Codes) -> None:
        self._first = np.ascontiguousarray(codes[:, :HALF])
        self._second = np.ascontiguousarray(codes[:, HALF:])

    def codes(self) -> Codes:
        return np.hstack((self._first, self._second))

    def find(self, queries: Codes, radius: int) -> list[Found]:
        lims, first, rows = _range_search(np.ascontiguousarray(queries[:, :HALF]), self._first, radius)
        seconds = np.ascontiguousarray(queries[:, HALF:])
        found = []
        for query in np.flatnonzero(lims[1:] > lims[:-1]).tolist():
            start, end = lims[query], lims[query + 1]
            candidates = rows[start:end]
            distances = first[start:end] + _distances(seconds[query], np.take(self._second, candidates, axis=0))
            near = distances <= radius
            if near.any():
                found.append((query, candidates[near], distances[near]))
        return found

    def nbytes(self) -> int:
        return self._first.nbytes + self._second.nbytes


class _Mih:
    """Multi-index hashing over 16 chunks of 16 bits, probing each chunk's own value."""

    def __init__(self, codes: Codes) -> None:
        n = len(codes)
        if n >= 1 << 32:
            raise ValueError(f"{n} rows: row numbers are kept in 32 bits")
        self._codes = np.ascontiguousarray(codes)
        keys = self._codes.view("<u2")
        # Per chunk, its rows ordered by the chunk's value and where each value's run starts
        # (offset into the concatenation of all chunks' rows).
        self._rows = np.empty(CHUNKS * n, np.uint32)
        self._starts = np.empty(CHUNKS * (KEYS + 1), np.int64)
        for chunk in range(CHUNKS):
            key = np.ascontiguousarray(keys[:, chunk])
            self._rows[chunk * n : (chunk + 1) * n] = np.argsort(key, kind="stable")
            starts = self._starts[chunk * (KEYS + 1) : (chunk + 1) * (KEYS + 1)]
            starts[0] = 0
            np.cumsum(np.bincount(key, minlength=KEYS), out=starts[1:])
            starts += chunk * n
        self._chunk_base = np.arange(CHUNKS, dtype=np.int64) * (KEYS + 1)

    def codes(self) -> Codes:
        return self._codes

    def find(self, queries: Codes, radius: int) -> list[Found]:
        slots = queries.view("<u2").astype(np.int64) + self._chunk_base
        starts, ends = self._starts[slots].tolist(), self._starts[slots + 1].tolist()
        found = []
        for query in range(len(queries)):
            rows = np.concatenate([self._rows[s:e] for s, e in zip(starts[query], ends[query], strict=True)])
            distances = _distances(queries[query], np.take(self._codes, rows, axis=0))
            near = distances <= radius
            if near.any():
                # A row near the query shares several chunks with it, so it came up several times.
                unique, first = np.unique(rows[near], return_index=True)
                found.append((query, unique.astype(np.int64), distances[near][first].astype(np.int64)))
        return found

    def nbytes(self) -> int:
        return self._codes.nbytes + self._rows.nbytes + self._starts.nbytes + self._chunk_base.nbytes


class _Main:
    """The merged rows, sorted by id (an id's row is a binary search away), and their finder."""

    def __init__(self, ids: Ids, finder: _Scan | _Mih) -> None:
        self.ids = ids
        self.alive = np.ones(len(ids), dtype=np.bool_)
        self.finder = finder
        self.dead = 0

    def codes(self) -> Codes:
        return self.finder.codes()

    def rows_of(self, ids: Ids) -> Rows:
        if not len(self.ids):
            return np.empty(0, np.int64)
        rows = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        held: Alive = (self.ids[rows] == ids) & self.alive[rows]
        return rows[held]

    def kill(self, rows: Rows) -> None:
        self.alive[rows] = False
        self.dead += len(rows)

    def find(self, queries: Codes, radius: int) -> list[Found]:
        return self.finder.find(queries, radius)

    def nbytes(self) -> int:
        return self.ids.nbytes + self.alive.nbytes + self.finder.nbytes()


class _Recent:
    """Rows added since the last merge: appended in place (the capacity doubles), scanned exactly."""

    def __init__(self) -> None:
        self.count = 0
        self._ids = np.empty(0, np.int64)
        self._codes = np.empty((0, CODE_BYTES), np.uint8)
        self._alive = np.empty(0, np.bool_)

    @property
    def ids(self) -> Ids:
        return self._ids[: self.count]

    @property
    def alive(self) -> Alive:
        return self._alive[: self.count]

    def codes(self) -> Codes:
        return self._codes[: self.count]

    def append(self, ids: Ids, codes: Codes) -> None:
        end = self.count + len(ids)
        if end > len(self._ids):
            capacity = max(end, 2 * len(self._ids))
            self._ids = _grown(self._ids, capacity, self.count)
            self._codes = _grown(self._codes, capacity, self.count)
            self._alive = _grown(self._alive, capacity, self.count)
        self._ids[self.count : end] = ids
        self._codes[self.count : end] = codes
        self._alive[self.count : end] = True
        self.count = end

    def rows_of(self, ids: Ids) -> Rows:
        return np.flatnonzero(np.isin(self.ids, ids) & self.alive)

    def kill(self, rows: Rows) -> None:
        self._alive[rows] = False

    def find(self, queries: Codes, radius: int) -> list[Found]:
        lims, distances, rows = _range_search(queries, self.codes(), radius)
        return [
            (query, rows[lims[query] : lims[query + 1]], distances[lims[query] : lims[query + 1]])
            for query in np.flatnonzero(lims[1:] > lims[:-1]).tolist()
        ]

    def nbytes(self) -> int:
        return self._ids.nbytes + self._codes.nbytes + self._alive.nbytes


class _Merge:
    """A new main part built in a thread from the live rows of frozen parts."""

    def __init__(self, parts: list[tuple[_Part, Alive]], scan_up_to: int) -> None:
        self.frozen = len(parts) - 1  # the recent parts among them
        self.result: _Main | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(parts, scan_up_to), name="pdq-merge", daemon=True)
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self) -> None:
        self._thread.join()

    def _run(self, parts: list[tuple[_Part, Alive]], scan_up_to: int) -> None:
        try:
            live = [np.flatnonzero(alive) for _, alive in parts]
            ids = np.concatenate([np.take(part.ids, rows) for (part, _), rows in zip(parts, live, strict=True)])
            # take, not a boolean index: 20 times faster on (n, 32) rows
            codes = np.concatenate(
                [np.take(part.codes(), rows, axis=0) for (part, _), rows in zip(parts, live, strict=True)]
            )
            order = np.argsort(ids, kind="stable")
            ids, codes = ids[order], np.take(codes, order, axis=0)
            self.result = _Main(ids, _Scan(codes) if len(ids) <= scan_up_to else _Mih(codes))
        except BaseException as exc:  # handed to the owner's thread, which raises it
            self.error = exc


@contextmanager
def _faiss_threads(count: int) -> Iterator[None]:
    """faiss on ``count`` OpenMP threads in this thread meanwhile; its own count after."""
    before = faiss.omp_get_max_threads()
    if before == count:
        yield
        return
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _range_search(queries: Codes, base: Codes, radius: int) -> tuple[Rows, Distances, Rows]:
    """faiss's scan: for each query, the rows of ``base`` within ``radius`` (lims, distances, rows)."""
    count = len(queries)
    if not len(base):
        return np.zeros(count + 1, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    result = faiss.RangeSearchResult(count)
    # faiss keeps distances strictly below its radius.
    faiss.hamming_range_search(  # type: ignore[attr-defined]  # missing from faiss's stubs
        faiss.swig_ptr(queries), faiss.swig_ptr(base), count, len(base), radius + 1, base.shape[1], result
    )
    lims = faiss.rev_swig_ptr(result.lims, count + 1).astype(np.int64)
    total = int(lims[-1])
    if not total:
        return lims, np.empty(0, np.int64), np.empty(0, np.int64)
    distances = faiss.rev_swig_ptr(result.distances, total).astype(np.int64)
    rows = faiss.rev_swig_ptr(result.labels, total).copy()
    return lims, distances, rows


def _distances(query: Codes, codes: Codes) -> Distances:
    """Hamming distances from one query to each row of ``codes``."""
    out = np.empty(len(codes), np.int32)
    if len(codes):
        faiss.hammings(  # type: ignore[attr-defined]  # missing from faiss's stubs
            faiss.swig_ptr(query), faiss.swig_ptr(codes), 1, len(codes), codes.shape[1], faiss.swig_ptr(out)
        )
    return out.astype(np.int64)


def _grown(array: npt.NDArray[G], capacity: int, keep: int) -> npt.NDArray[G]:
    grown = np.empty((capacity, *array.shape[1:]), array.dtype)
    grown[:keep] = array[:keep]
    return grown


def _checked_ids(ids: npt.NDArray[np.int64]) -> Ids:
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids are a 1-D integer array, not {ids.dtype} {ids.shape}")
    return ids.astype(np.int64, copy=False)


def _checked_codes(codes: npt.NDArray[np.uint8]) -> Codes:
    codes = np.asarray(codes)
    if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != CODE_BYTES:
        raise ValueError(f"PDQ codes are uint8 of shape (n, 32), not {codes.dtype} {codes.shape}")
    return np.ascontiguousarray(codes)
