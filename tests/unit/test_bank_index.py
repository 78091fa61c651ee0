"""The PDQ index against brute force: exact where its docstring says exact, and in the
multi-index regime exactly the rows that share a whole 16-bit chunk with the query."""

from collections.abc import Iterator

import faiss
import numpy as np
import numpy.typing as npt
import pytest
from modstream.bank.index import PdqIndex, pdq_codes, pdq_hex

Codes = npt.NDArray[np.uint8]
Ids = npt.NDArray[np.int64]
Results = list[list[tuple[int, int]]]
RADII = (0, 1, 7, 15, 16, 20, 31)
SCAN = {"scan_up_to": 1 << 30}  # the main part stays an exact scan
MIH = {"scan_up_to": 0}  # any main part is multi-index hashed


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread() -> Iterator[None]:
    """As a worker runs it: with cores busy (other tests), an OpenMP team per tiny scan
    waits for its slowest thread and costs far more than the scan (15 s here instead of 0.3)."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def flipped(rng: np.random.Generator, code: Codes, bits: int) -> Codes:
    out = code.copy()
    for bit in rng.choice(256, bits, replace=False):
        out[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


def brute_force(ids: Ids, codes: Codes, queries: Codes, radius: int, *, chunk_shared: bool = False) -> Results:
    """Every (id, distance) within the radius, nearest first; with ``chunk_shared``, only the
    rows that have one of the query's 16 two-byte chunks exactly."""
    xor = codes[None, :, :] ^ queries[:, None, :]
    distances = np.unpackbits(xor, axis=2).sum(axis=2)
    near = distances <= radius
    if chunk_shared:
        near &= (xor.reshape(len(queries), len(codes), 16, 2) == 0).all(axis=3).any(axis=2)
    results = []
    for row, keep in zip(distances, near, strict=True):
        found = sorted(zip(ids[keep].tolist(), row[keep].tolist(), strict=True), key=lambda p: (p[1], p[0]))
        results.append(found)
    return results


@pytest.fixture(scope="module")
def bank() -> tuple[Ids, Codes, Codes]:
    """3,000 random hashes under scattered ids, and queries: copies, near-duplicates at 1 to
    40 bits (several at exactly 15, 16 and 31) and random hashes."""
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    ids = rng.choice(1 << 40, 3000, replace=False).astype(np.int64)
    sources = rng.integers(0, 3000, 160)
    bits = [0, 0, 15, 15, 16, 16, 31, 31, 32, *range(1, 41), *rng.integers(10, 21, 80).tolist()]
    planted = [flipped(rng, codes[s], b) for s, b in zip(sources, bits, strict=False)]
    queries = np.vstack([*planted, rng.integers(0, 256, (31, 32), dtype=np.uint8)])
    return ids, codes, queries


@pytest.mark.parametrize("regime", [SCAN, MIH], ids=["scan", "multi-index"])
def test_search_is_brute_force_where_exact(bank: tuple[Ids, Codes, Codes], regime: dict[str, int]) -> None:
    ids, codes, queries = bank
    index = PdqIndex(**regime)
    index.add(ids, codes)
    # Before the merge every row is recent: scanned exactly, whatever the regime.
    for radius in (0, 15, 31):
        assert index.search(queries, radius) == brute_force(ids, codes, queries, radius)
    index.compact()
    assert len(index) == len(ids)
    for radius in RADII:
        exact = regime is SCAN or radius <= 15
        expected = brute_force(ids, codes, queries, radius, chunk_shared=not exact)
        assert index.search(queries, radius) == expected, radius
    # Outside the promise the multi-index still finds nearly every near-duplicate at 31.
    if regime is MIH:
        found, everything = (
            sum(map(len, r)) for r in (index.search(queries, 31), brute_force(ids, codes, queries, 31))
        )
        assert 0.9 * everything <= found < everything


@pytest.mark.parametrize("regime", [SCAN, MIH], ids=["scan", "multi-index"])
def test_the_radius_is_inclusive(regime: dict[str, int]) -> None:
    rng = np.random.default_rng(3)
    code = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    index = PdqIndex(**regime)
    index.add(np.array([42]), code)
    index.compact()
    for bits in (0, 1, 15):
        query = flipped(rng, code[0], bits)[None]
        assert index.search(query, bits) == [[(42, bits)]]
        assert index.search(query, max(bits - 1, 0)) == ([[]] if bits else [[(42, 0)]])
    if regime is SCAN:
        query = flipped(rng, code[0], 31)[None]
        assert index.search(query, 31) == [[(42, 31)]]
        assert index.search(query, 30) == [[]]


@pytest.mark.parametrize("regime", [SCAN, MIH], ids=["scan", "multi-index"])
def test_live_adds_replacements_and_removes(bank: tuple[Ids, Codes, Codes], regime: dict[str, int]) -> None:
    ids, codes, _ = bank
    rng = np.random.default_rng(11)
    index = PdqIndex(**regime)
    index.add(ids, codes)
    index.compact()
    before = index.memory_bytes()

    new = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    index.add(np.array([5]), new)  # searchable at once, from the recent part
    assert index.search(new, 0) == [[(5, 0)]]
    assert len(index) == len(ids) + 1

    replacement = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    index.add(ids[:1], replacement)  # an id in the main part: its old code no longer matches
    assert index.search(codes[:1], 10) == [[]]
    assert index.search(replacement, 0) == [[(int(ids[0]), 0)]]
    index.add(np.array([5]), replacement)  # an id in the recent part, replaced there
    assert index.search(new, 0) == [[]]
    assert index.search(replacement, 0) == [[(5, 0), (int(ids[0]), 0)]]  # same distance: by id
    assert len(index) == len(ids) + 1

    index.remove(np.array([5, int(ids[1]), 123_456_789]))  # one recent, one main, one unknown
    assert index.search(np.vstack([replacement, codes[1:2]]), 31) == [[(int(ids[0]), 0)], []]
    assert len(index) == len(ids) - 1
    index.remove(np.array([5]))  # gone already: nothing happens
    assert len(index) == len(ids) - 1
    assert index.memory_bytes() > before  # the recent part's buffers

    index.compact()
    current_ids = np.concatenate([ids[:1], ids[2:]])
    current = np.vstack([replacement, codes[2:]])
    queries = np.vstack([replacement, codes[:40], flipped(rng, codes[7], 9)[None]])
    assert index.search(queries, 15) == brute_force(current_ids, current, queries, 15)


def test_the_last_of_repeated_ids_wins() -> None:
    codes = np.random.default_rng(5).integers(0, 256, (3, 32), dtype=np.uint8)
    index = PdqIndex()
    index.add(np.array([9, 9, 4]), codes)
    assert len(index) == 2
    assert index.search(codes, 0) == [[], [(9, 0)], [(4, 0)]]


@pytest.mark.parametrize("regime", [SCAN, MIH], ids=["scan", "multi-index"])
def test_merges_in_the_background_keep_every_answer_right(regime: dict[str, int]) -> None:
    """Random adds, replacements and removes, one at a time, with a merge due every 50:
    after each step the index answers as a dictionary of the live entries would."""
    rng = np.random.default_rng(13)
    index = PdqIndex(merge_at=50, **regime)
    live: dict[int, Codes] = {}
    steps_merging = 0
    for step in range(1500):
        if live and rng.random() < 0.2:
            gone = int(rng.choice(list(live)))
            index.remove(np.array([gone]))
            del live[gone]
        else:
            entry = int(rng.integers(0, 700))  # ids repeat: replacements
            code = rng.integers(0, 256, 32, dtype=np.uint8)
            index.add(np.array([entry]), code[None])
            live[entry] = code
            assert index.search(code[None], 0)[0][0] == (entry, 0)
        steps_merging += index._merge is not None
        if step % 100 == 99:
            entries = np.array(list(live), dtype=np.int64)
            codes = np.array(list(live.values()), dtype=np.uint8)
            queries = np.vstack(
                [flipped(rng, codes[i], b) for i, b in zip(rng.integers(0, len(codes), 20), range(20), strict=True)]
            )
            assert len(index) == len(live)
            assert index.search(queries, 15) == brute_force(entries, codes, queries, 15)
    assert steps_merging > 10
    index.compact()
    entries = np.array(list(live), dtype=np.int64)
    codes = np.array(list(live.values()), dtype=np.uint8)
    assert index.search(codes, 12) == brute_force(entries, codes, codes, 12)
    assert len(index._recents) == 1 and index._recents[0].count == 0


def test_empty_index() -> None:
    index = PdqIndex()
    query = np.zeros((2, 32), dtype=np.uint8)
    assert index.search(query, 31) == [[], []]
    assert index.search(np.empty((0, 32), dtype=np.uint8), 31) == []
    index.remove(np.array([1]))
    index.compact()
    assert len(index) == 0
    assert index.memory_bytes() < 1024
    index.add(np.array([1]), query[:1])
    index.remove(np.array([1]))
    index.compact()
    assert len(index) == 0 and index.search(query, 31) == [[], []]


def test_memory_per_hash_in_the_scan_regime(bank: tuple[Ids, Codes, Codes]) -> None:
    ids, codes, _ = bank
    index = PdqIndex()
    index.add(ids, codes)
    index.compact()
    assert index.memory_bytes() == 41 * len(ids)  # 32 code bytes, an 8-byte id, a live flag


def test_bad_arguments() -> None:
    index = PdqIndex()
    with pytest.raises(ValueError, match=r"uint8 of shape \(n, 32\), not uint8 \(3, 31\)"):
        index.add(np.arange(3), np.zeros((3, 31), dtype=np.uint8))
    with pytest.raises(ValueError, match="2 ids for 3 codes"):
        index.add(np.arange(2), np.zeros((3, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="1-D integer array"):
        index.remove(np.array([1.5]))
    with pytest.raises(ValueError, match="radius must be >= 0"):
        index.search(np.zeros((1, 32), dtype=np.uint8), -1)


def test_hex_round_trip_is_big_endian() -> None:
    hexes = ["f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22", "00" * 31 + "01"]
    codes = pdq_codes(hexes)
    assert codes.shape == (2, 32) and codes.dtype == np.uint8
    assert codes[0, 0] == 0xF8 and codes[1, 31] == 1  # bytes in the order written, as HMA reads them
    assert [pdq_hex(c) for c in codes] == hexes
    assert pdq_hex(pdq_codes([hexes[0].upper()])[0]) == hexes[0]
    assert pdq_codes([]).shape == (0, 32)


@pytest.mark.parametrize(
    "bad", ["abc", "g" * 64, "0" * 63, "0" * 65, "00 " + "0" * 61, " " + "0" * 64, "0x" + "0" * 62]
)
def test_bad_hex_is_refused_by_position(bad: str) -> None:
    with pytest.raises(ValueError, match=r"PDQ hash #1 is not 64 hex digits: "):
        pdq_codes(["0" * 64, bad])


def test_one_string_is_not_a_list_of_hashes() -> None:
    with pytest.raises(TypeError, match="a sequence of hashes"):
        pdq_codes("0" * 64)
    with pytest.raises(ValueError, match=r"shape \(32,\)"):
        pdq_hex(np.zeros(31, dtype=np.uint8))
