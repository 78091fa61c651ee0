"""Banks as the topic's records build them, what an image matches, and changes refused."""

import random

import pytest
from modstream.bank import ops
from modstream.bank.state import BankRecordInvalid, Banks
from modstream.bank.topic import Change
from modstream.core.events import Bank, BankAction, BankEntry, ImageHashes, PdqHash, bank_key, entry_key

rng = random.Random(7)


def random_pdq() -> str:
    return rng.getrandbits(256).to_bytes(32, "big").hex()


def flipped(hex_hash: str, bits: int) -> str:
    value = int(hex_hash, 16)
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return value.to_bytes(32, "big").hex()


def image(pdq: str | None = None, quality: int = 100, sha: str = "1", md5: str = "2") -> ImageHashes:
    return ImageHashes(sha256=sha * 64, md5=md5 * 32, pdq=None if pdq is None else PdqHash(hex=pdq, quality=quality))


def apply(banks: Banks, *changes: Change) -> Banks:
    for key, value in changes:
        banks.apply(key, value)
    return banks


def bank(name: str, action: BankAction = BankAction.BLOCK, **fields: object) -> Change:
    queue = "banked" if action is BankAction.REVIEW else None
    return bank_key(name), Bank(name=name, action=action, review_queue=queue, changed_by="t", **fields).to_bytes()  # type: ignore[arg-type]


def entry(bank_name: str, entry_id: str, **signals: object) -> Change:
    record = BankEntry(bank=bank_name, entry_id=entry_id, added_by="t", **signals)  # type: ignore[arg-type]
    return entry_key(bank_name, entry_id), record.to_bytes()


def test_exact_hashes_match_at_distance_zero() -> None:
    banks = apply(Banks(), bank("csam"), entry("csam", "e1", sha256="1" * 64), entry("csam", "e2", md5="3" * 32))
    found = banks.match(image(), "default")
    assert found is not None
    assert found.ref().model_dump() == {
        "bank": "csam",
        "entry_id": "e1",
        "signal": "sha256",
        "distance": 0,
        "action": BankAction.BLOCK,
    }
    found = banks.match(image(sha="9", md5="3"), "default")
    assert found is not None and (found.entry_id, found.signal) == ("e2", "md5")
    assert banks.match(image(sha="9", md5="9"), "default") is None


def test_pdq_matches_within_each_banks_own_distance() -> None:
    known = random_pdq()
    banks = apply(Banks(), bank("wide"), bank("narrow", distance=10), entry("wide", "w", pdq=known))
    at_31, at_32 = flipped(known, 31), flipped(known, 32)
    found = banks.match(image(at_31), "default")
    assert found is not None and (found.bank.name, found.signal, found.distance) == ("wide", "pdq", 31)
    assert banks.match(image(at_32), "default") is None
    # The same hash in the narrow bank only: 12 bits away is past its distance of 10.
    banks = apply(Banks(), bank("narrow", distance=10), entry("narrow", "n", pdq=known))
    assert banks.match(image(flipped(known, 12)), "default") is None
    found = banks.match(image(flipped(known, 10)), "default")
    assert found is not None and found.distance == 10


def test_a_low_quality_pdq_hash_never_matches() -> None:
    known = random_pdq()
    banks = apply(Banks(), bank("b", min_quality=50), entry("b", "e", pdq=known))
    assert banks.match(image(known, quality=49), "default") is None
    assert banks.match(image(known, quality=50), "default") is not None


def test_disabled_banks_and_other_tenants_banks_do_not_match() -> None:
    known = random_pdq()
    banks = apply(Banks(), bank("off", enabled=False), bank("kids", tenants=["kids"]))
    apply(banks, entry("off", "a", pdq=known), entry("kids", "b", pdq=known))
    assert banks.match(image(known), "default") is None
    found = banks.match(image(known), "kids")
    assert found is not None and found.bank.name == "kids"


def test_the_strictest_action_wins_then_the_closest_entry() -> None:
    known = random_pdq()
    banks = apply(
        Banks(),
        bank("good", BankAction.ALLOW),
        bank("bad"),
        bank("check", BankAction.REVIEW),
        entry("good", "g", pdq=known),
        entry("check", "c", pdq=flipped(known, 3)),
        entry("bad", "far", pdq=flipped(known, 20)),
        entry("bad", "near", pdq=flipped(known, 5)),
    )
    found = banks.match(image(known), "default")
    assert found is not None and (found.bank.name, found.entry_id, found.distance) == ("bad", "near", 5)
    apply(banks, (bank_key("bad"), None))
    found = banks.match(image(known), "default")
    assert found is not None and found.bank.action is BankAction.REVIEW
    assert found.ref().action is BankAction.REVIEW


def test_removing_and_replacing_entries_takes_effect_at_once() -> None:
    first, second = random_pdq(), random_pdq()
    banks = apply(Banks(), bank("b"), entry("b", "e", pdq=first, sha256="1" * 64))
    assert banks.match(image(first), "default") is not None
    apply(banks, entry("b", "e", pdq=second))  # the same entry, new hashes
    assert banks.match(image(first, sha="9"), "default") is None
    assert banks.match(image(second, sha="9"), "default") is not None
    assert banks.match(image(sha="1"), "default") is None  # its old sha256 went with it
    apply(banks, (entry_key("b", "e"), None))
    assert banks.match(image(second), "default") is None
    assert banks.entries == {}


def test_deleting_a_bank_deletes_its_entries() -> None:
    known = random_pdq()
    banks = apply(Banks(), bank("a"), bank("b"), entry("a", "1", pdq=known), entry("b", "2", pdq=known))
    apply(banks, (bank_key("a"), None))
    assert [e.bank for e in banks.entries.values()] == ["b"]
    found = banks.match(image(known), "default")
    assert found is not None and found.bank.name == "b"


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("banks/x", b"{}", "neither bank/<name> nor entry"),
        ("entry/x", b"{}", "neither bank/<name> nor entry"),
        ("bank/x", b"not json", "not a valid Bank"),
        ("bank/x", bank("y")[1], "holds the bank 'y'"),
        ("entry/b/other", entry("b", "e", md5="3" * 32)[1], "holds entry b/e"),
        ("entry/b/e", b'{"bank": "b", "entry_id": "e", "added_by": "t"}', "at least one of pdq, sha256, md5"),
    ],
)
def test_a_bad_record_is_refused_with_the_reason(key: str, value: bytes, said: str) -> None:
    banks = apply(Banks(), bank("b"), entry("b", "kept", md5="3" * 32))
    with pytest.raises(BankRecordInvalid, match=said):
        banks.apply(key, value)
    assert list(banks.banks) == ["b"] and list(banks.entries) == [("b", "kept")]  # nothing else changed


def test_changes_are_checked_before_they_are_published() -> None:
    banks = apply(Banks(), bank("b"))
    with pytest.raises(ops.BankError, match="exists already"):
        ops.create(banks, name="b", action=BankAction.BLOCK, changed_by="t")
    with pytest.raises(ops.BankError, match="review bank names its review_queue"):
        ops.create(banks, name="r", action=BankAction.REVIEW, changed_by="t")
    with pytest.raises(ops.BankError, match="no bank named 'nope'"):
        ops.add(banks, "nope", [{"md5": "3" * 32}], added_by="t")
    with pytest.raises(ops.BankError, match="pdq"):
        ops.add(banks, "b", [{"pdq": "xyz"}], added_by="t")
    with pytest.raises(ops.BankError, match="entry_id"):
        ops.add(banks, "b", [{"md5": "3" * 32, "entry_id": "a/b"}], added_by="t")
    with pytest.raises(ops.BankError, match="has no entry e9"):
        ops.remove(banks, "b", ["e9"])
    # Leaving review drops the queue; changing only what is given keeps the rest.
    apply(banks, ops.create(banks, name="r", action=BankAction.REVIEW, review_queue="q", distance=20, changed_by="t"))
    apply(banks, ops.update(banks, "r", action=BankAction.BLOCK, changed_by="u"))
    assert banks.banks["r"].review_queue is None and banks.banks["r"].distance == 20


def test_added_entries_carry_who_added_them() -> None:
    banks = apply(Banks(), bank("b"))
    hashes = image(random_pdq(), quality=80)
    apply(banks, *ops.add(banks, "b", [hashes], added_by="ana", source_event_id="ev1", note="seen twice"))
    (added,) = banks.entries.values()
    assert (added.added_by, added.source_event_id, added.note, added.pdq_quality) == ("ana", "ev1", "seen twice", 80)
    assert banks.match(hashes, "default") is not None


def test_every_match_is_listed_the_deciding_one_first() -> None:
    known = random_pdq()
    banks = apply(
        Banks(),
        bank("good", BankAction.ALLOW),
        bank("bad"),
        entry("good", "g", pdq=known),
        entry("bad", "far", pdq=flipped(known, 20)),
        entry("bad", "near", pdq=flipped(known, 5), sha256="1" * 64),
    )
    found = banks.matches("default", sha256="1" * 64, pdq=PdqHash(hex=known, quality=100))
    assert [(m.bank.name, m.entry_id, m.signal, m.distance) for m in found] == [
        ("bad", "near", "sha256", 0),
        ("bad", "near", "pdq", 5),
        ("bad", "far", "pdq", 20),
        ("good", "g", "pdq", 0),
    ]
    assert banks.match_signals("default", pdq=PdqHash(hex=known, quality=100)) == found[1]


def test_records_applied_together_end_as_applied_one_by_one() -> None:
    hashes = [random_pdq() for _ in range(6)]
    records = [
        bank("b"),
        *(entry("b", f"e{i}", pdq=h) for i, h in enumerate(hashes)),
        entry("b", "e1", pdq=hashes[5]),  # replaced while waiting for the index
        (entry_key("b", "e2"), None),  # removed while waiting
        ("nonsense", b"{}"),
        entry("b", "e9", md5="3" * 32),
    ]
    together, alone = Banks(), Banks()
    refused = together.apply_all(records)
    assert [(position, type(problem)) for position, problem in refused] == [(9, BankRecordInvalid)]
    for key, value in records:
        if key != "nonsense":
            alone.apply(key, value)
    assert together.entries == alone.entries
    for h in hashes:
        query = image(h, sha="9")
        assert [m.entry_id for m in together.matches("default", pdq=query.pdq)] == [
            m.entry_id for m in alone.matches("default", pdq=query.pdq)
        ]
    assert together.match(image(hashes[2], sha="9"), "default") is None
    found = together.matches("default", pdq=PdqHash(hex=hashes[5], quality=100))
    assert sorted(m.entry_id for m in found) == ["e1", "e5"]
