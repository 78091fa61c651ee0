"""Signal types as plug-ins: each registered type keeps its own contract, a type defined here
(one class and one ``register``) goes through banks, changes and files like the built-in
ones, and banks leave faiss's thread count as they found it."""

import io
import json
from collections.abc import Iterator

import faiss
import pytest
from modstream.bank import formats, ops, signals
from modstream.bank.format_names import Format
from modstream.bank.formats import FormatError
from modstream.bank.signals import Query, SignalType
from modstream.bank.state import BankRecordInvalid, Banks
from modstream.bank.topic import Change, delete_entry, put_bank, put_entry
from modstream.core.events import Bank, BankAction, BankEntry, ImageHashes, PdqHash


class SizeSignal(SignalType):
    """A toy type: the image's size in KiB, matching within 1 KiB (the default linear index)."""

    name = "size_kib"
    max_distance = 1

    def validate(self, value: str) -> str:
        if not value.strip().isdigit():
            raise ValueError(f"{value!r} is not a size in KiB")
        return str(int(value))

    def hash(self, data: bytes) -> str:
        return str(len(data) // 1024)

    def distance(self, first: str, second: str) -> int:
        return abs(int(first) - int(second))

    def examples(self) -> list[str]:
        return ["0", "12"]


@pytest.fixture
def size() -> Iterator[SignalType]:
    yield signals.register(SizeSignal())
    signals.unregister(SizeSignal.name)


def apply(banks: Banks, *changes: Change) -> Banks:
    for key, value in changes:
        banks.apply(key, value)
    return banks


def block_bank() -> Banks:
    return apply(Banks(), put_bank(Bank(name="b", action=BankAction.BLOCK, changed_by="t")))


@pytest.mark.parametrize("kind", signals.names())
def test_every_registered_type_validates_compares_and_indexes_its_examples(kind: str) -> None:
    signal = signals.get(kind)
    examples = signal.examples()
    assert examples and [signal.validate(f" {e} ") for e in examples] == examples
    assert signal.compare(examples[0], examples[0]) == (True, 0)
    index = signal.index()
    index.add(list(enumerate(examples, 1)))
    assert index.search(examples[0], 0)[0] == (1, 0)
    index.remove([(1, examples[0])])
    assert 1 not in [found for found, _ in index.search(examples[0], signal.max_distance)]


@pytest.mark.parametrize("kind", ["pdq", "md5", "sha256"])
def test_hashes_are_kept_in_lowercase_and_refused_one_digit_short(kind: str) -> None:
    signal = signals.get(kind)
    example = signal.examples()[0]
    assert signal.validate(example.upper()) == example
    with pytest.raises(ValueError, match=f"is not a {kind} hash"):
        signal.validate(example[:-1])


def test_pdq_compares_by_hamming_distance_within_the_banks_distance() -> None:
    pdq = signals.get("pdq")
    first, second = pdq.examples()  # two edits of one photo
    assert pdq.compare(first, second) == (True, 2)
    assert pdq.compare(first, second, threshold=1) == (False, 2)
    assert pdq.threshold(Bank(name="b", action=BankAction.BLOCK, distance=10, changed_by="t")) == 10
    assert pdq.query(PdqHash(hex=first, quality=40)) == Query(first, 40)
    md5 = signals.get("md5")
    assert md5.compare(md5.examples()[0], md5.examples()[0].upper().lower()) == (True, 0)
    assert md5.compare(md5.examples()[0], "0" * 32) == (False, 1)


def test_an_image_is_hashed_by_every_type_that_hashes_bytes(size: SignalType) -> None:
    hashes = signals.hash_image(b"x" * 5000)
    assert hashes.pdq is None  # Triton's, added by the pipeline
    assert hashes.signals == {"size_kib": "4"} and len(hashes.sha256) == 64 and len(hashes.md5) == 32
    assert list(signals.queries(hashes)) == ["md5", "sha256", "size_kib"]


def test_a_new_type_is_added_matched_and_removed_like_the_built_in_ones(size: SignalType) -> None:
    banks = block_bank()
    (change,) = ops.add(banks, "b", [{"signals": {"size_kib": " 0004 "}}], added_by="t", entry_id="e")
    apply(banks, change)
    assert banks.entries["b", "e"].signals == {"size_kib": "4"}  # as the type keeps it
    found = banks.match(signals.hash_image(b"y" * 5500), "default")  # 5 KiB
    assert found is not None and (found.entry_id, found.signal, found.distance) == ("e", "size_kib", 1)
    assert found.ref().signal == "size_kib"
    assert banks.match(signals.hash_image(b"y" * 7000), "default") is None  # 6 KiB
    # An exact hash of the same entry is named before it: the closer match decides.
    apply(banks, *ops.add(banks, "b", [signals.hash_image(b"z" * 4200).entry_fields()], added_by="t", entry_id="e"))
    assert [
        (m.signal, m.distance) for m in banks.matches("default", **signals.queries(signals.hash_image(b"z" * 4200)))
    ] == [
        ("sha256", 0),
        ("md5", 0),
        ("size_kib", 0),
    ]
    apply(banks, *ops.remove(banks, "b", ["e"]))
    assert banks.match(signals.hash_image(b"y" * 5500), "default") is None and len(banks) == 0


def test_changes_and_records_with_a_bad_or_unknown_value_are_refused(size: SignalType) -> None:
    banks = block_bank()
    with pytest.raises(ops.BankError, match="'big' is not a size in KiB"):
        ops.add(banks, "b", [{"signals": {"size_kib": "big"}}], added_by="t")
    with pytest.raises(ops.BankError, match=r"unknown signal type 'later'.*size_kib"):
        ops.add(banks, "b", [{"signals": {"later": "1"}}], added_by="t")
    with pytest.raises(ops.BankError, match="pdq have fields of their own"):
        ops.add(banks, "b", [{"signals": {"pdq": "1"}}], added_by="t")
    bad = BankEntry(bank="b", entry_id="x", signals={"size_kib": "big"}, added_by="t")
    with pytest.raises(BankRecordInvalid, match="entry/b/x: 'big' is not a size in KiB"):
        banks.apply(*put_entry(bad))
    # A type this process does not know (a newer writer's) is kept, not matched; the rest matches.
    newer = BankEntry(bank="b", entry_id="n", md5="3" * 32, signals={"later": "1"}, added_by="t")
    apply(banks, put_entry(newer))
    assert banks.entries["b", "n"].signals == {"later": "1"}
    found = banks.match_signals("default", md5="3" * 32)
    assert found is not None and found.entry_id == "n"
    apply(banks, delete_entry("b", "n"))
    assert banks.match_signals("default", md5="3" * 32) is None


def test_a_new_type_is_read_and_written_by_the_files_that_name_types(size: SignalType) -> None:
    with pytest.raises(FormatError) as refused:
        formats.read(Format.TE, "size_kib 12\nsize_kib twelve\nvideo_md5 00\n")
    problems = dict(refused.value.problems)
    assert problems[2] == "'twelve' is not a size in KiB"
    assert "(modstream banks hold pdq, md5, sha256, text, size_kib)" in problems[3]
    (read,) = formats.read(Format.TE, "size_kib 012 from a partner\n")
    assert read.signals == {"size_kib": "12"}
    assert read.fields() == {"entry_id": read.entry_id, "signals": {"size_kib": "12"}, "note": "from a partner"}
    fields = read.fields() | {"entry_id": "e", "pdq": signals.get("pdq").examples()[0]}
    entry = BankEntry.model_validate({"bank": "b", "added_by": "t", **fields})
    bank = Bank(name="b", action=BankAction.BLOCK, changed_by="t")
    out = io.StringIO()
    formats.write(Format.TE, bank, [entry], out)
    assert out.getvalue().splitlines()[1] == "size_kib 12"
    out = io.StringIO()
    formats.write(Format.HMA, bank, [entry], out)
    (content,) = json.loads(out.getvalue())
    assert content["signals"] == {"pdq": entry.pdq, "size_kib": "12"}
    (again,) = formats.read(Format.HMA, out.getvalue())
    assert again.signals == {"pdq": entry.pdq, "size_kib": "12"} and again.entry_id == "e"
    with pytest.raises(FormatError, match="item 1: 'x' is not a size in KiB"):
        formats.read(Format.HMA, json.dumps({"size_kib": "x"}))


def test_image_hashes_carry_a_new_types_value_only_when_there_is_one() -> None:
    plain = ImageHashes(sha256="1" * 64, md5="2" * 32)
    assert "signals" not in plain.model_dump_json()  # the wire as it was
    assert ImageHashes.model_validate_json(plain.model_dump_json()) == plain
    more = plain.model_copy(update={"signals": {"size_kib": "4"}})
    assert json.loads(more.model_dump_json())["signals"] == {"size_kib": "4"}


def test_making_and_using_banks_leaves_faiss_threads_as_they_were() -> None:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(3)
    try:
        pdq = signals.get("pdq").examples()[0]
        banks = block_bank()
        assert faiss.omp_get_max_threads() == 3
        apply(banks, *ops.add(banks, "b", [{"pdq": pdq}], added_by="t"))
        banks.compact()
        assert banks.match_signals("default", pdq=PdqHash(hex=pdq, quality=90)) is not None
        assert faiss.omp_get_max_threads() == 3
    finally:
        faiss.omp_set_num_threads(before)
