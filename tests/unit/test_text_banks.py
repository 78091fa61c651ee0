"""Text banks: the ``text`` signal type (a phrase, checked), its index (every phrase found in a
folded line, changed live), and ``Banks.match_text`` (the deciding entry as hash matches
decide, each span mapped back to the line as read)."""

import io
import json
import random

import pytest
from modstream.bank import formats, ops, signals
from modstream.bank.format_names import Format
from modstream.bank.signals import TextIndex
from modstream.bank.signals.text import MIN_FOLDED
from modstream.bank.state import BankRecordInvalid, Banks
from modstream.bank.topic import Change, delete_bank, delete_entry, put_entry
from modstream.core.events import TEXT_MAX_CHARS, Bank, BankAction, BankEntry, TextLine, TextReading
from modstream.core.text import fold, fold_term

from tests.unit.test_bank_state import apply, bank

TEXT = signals.get("text")


def reading(*lines: str, confidence: float = 0.9) -> TextReading:
    return TextReading(
        regions=len(lines), lines=[TextLine(text=t, confidence=confidence, box=(0, 0, 1, 1)) for t in lines]
    )


def phrase(bank_name: str, entry_id: str, text: str, source: str | None = None) -> Change:
    return put_entry(
        BankEntry(bank=bank_name, entry_id=entry_id, signals={"text": text}, added_by="t", source_event_id=source)
    )


def test_a_phrase_is_kept_as_given_and_one_too_short_or_too_long_to_bank_is_refused() -> None:
    assert TEXT.validate("  Free Crypto Giveaway ") == "Free Crypto Giveaway"
    assert TEXT.validate("scam") == "scam"
    for short in ("a", "ok", " . . ", "free"):  # "free" folds to "fre": three letters
        assert len(fold_term(short)) < MIN_FOLDED
        with pytest.raises(ValueError, match="too short to bank"):
            TEXT.validate(short)
    with pytest.raises(ValueError, match=f"1 to {TEXT_MAX_CHARS} characters, not {TEXT_MAX_CHARS + 1}"):
        TEXT.validate("x" * (TEXT_MAX_CHARS + 1))
    banks = apply(Banks(), bank("b"))
    with pytest.raises(ops.BankError, match="signals: the phrase 'ok' is too short to bank"):
        ops.add(banks, "b", [{"signals": {"text": "ok"}}], added_by="t")
    # A record the type refuses (written by hand, or when folding was weaker) is refused, named.
    with pytest.raises(BankRecordInvalid, match="entry/b/x: the phrase 'ok'"):
        apply(banks, phrase("b", "x", "ok"))


def test_text_is_no_image_hash() -> None:
    hashes = signals.hash_image(b"free crypto giveaway")
    assert hashes.signals == {} and "text" not in signals.queries(hashes)


def test_a_phrase_matches_through_the_evasions_fold_defeats_and_the_span_is_the_text_as_read() -> None:
    banks = apply(Banks(), bank("scams"), phrase("scams", "e1", "free crypto giveaway"))
    lines = ("Hello!", "Get your FR33 CRYPT0 G1VEAWAY now", "f r e e  c r y p t o  giveaway", "freeeee crypto giveaway")
    found = banks.match_text(reading(*lines), "default")
    assert found.decides is not None and (found.decides.bank.name, found.decides.entry_id) == ("scams", "e1")
    assert found.decides.ref().signal == "text" and found.decides.ref().distance == 0
    assert [(s.line, lines[s.line][s.start : s.end]) for s in found.spans] == [
        (1, "FR33 CRYPT0 G1VEAWAY"),
        (2, "f r e e  c r y p t o  giveaway"),
        (3, "freeeee crypto giveaway"),
    ]
    assert {(s.label, s.rule, s.confidence) for s in found.spans} == {("scams", "bank:scams", 0.9)}
    assert banks.match_text(reading("free cryptocurrency? no."), "default").decides is None
    assert banks.match_text(reading(), "default") == (None, [])


def test_the_strictest_bank_decides_as_for_hashes_and_banks_apply_to_their_tenants() -> None:
    banks = apply(
        Banks(),
        bank("known-good", BankAction.ALLOW),
        bank("scams", BankAction.REVIEW),
        bank("threats", tenants=["acme"]),
        bank("off", enabled=False),
        phrase("known-good", "g", "crypto giveaway"),
        phrase("scams", "s", "free crypto"),
        phrase("threats", "t", "free crypto"),
        phrase("off", "o", "giveaway"),
    )
    text = reading("FREE CRYPTO GIVEAWAY")
    other = banks.match_text(text, "default")
    assert other.decides is not None and other.decides.bank.name == "scams"
    # An allow bank's phrase neither decides nor shows: words do not vouch for a picture.
    assert [(s.label, s.start, s.end) for s in other.spans] == [("scams", 0, 11)]
    only_allowed = banks.match_text(reading("a crypto giveaway"), "default")
    assert only_allowed.decides is None and only_allowed.spans == []
    acme = banks.match_text(text, "acme")
    assert acme.decides is not None and acme.decides.bank.name == "threats"  # block outranks review
    # One order for both kinds of match: the same entries found through the generic lookup.
    assert [m.bank.name for m in banks.matches("acme", text="FREE CRYPTO GIVEAWAY")] == [
        "threats",
        "scams",
        "known-good",
    ]


def test_a_span_is_given_once_per_bank_even_when_entries_share_the_phrase() -> None:
    banks = apply(Banks(), bank("b"), phrase("b", "e1", "free crypto"), phrase("b", "e2", "FREE-CRYPTO"))
    found = banks.match_text(reading("free crypto, free crypto"), "default")
    assert [(s.start, s.end) for s in found.spans] == [(0, 11), (13, 24)]
    assert found.decides is not None and found.decides.entry_id == "e1"


def test_tombstones_a_deleted_bank_and_an_erased_upload_take_phrases_away() -> None:
    banks = apply(
        Banks(),
        bank("b"),
        bank("c"),
        phrase("b", "e1", "free crypto", source="upload-1"),
        phrase("b", "e2", "scam coin"),
        phrase("c", "e3", "wire the money"),
    )
    text = reading("free crypto scam coin", "wire the money")
    assert {s.label for s in banks.match_text(text, "default").spans} == {"b", "c"}
    (erased,) = ops.erase_taken_from(banks, ["upload-1"])
    assert erased == delete_entry("b", "e1")
    apply(banks, erased)
    assert [(s.line, s.start) for s in banks.match_text(text, "default").spans] == [(0, 12), (1, 0)]
    apply(banks, *delete_bank(banks, "c"))
    assert [(s.line, s.start) for s in banks.match_text(text, "default").spans] == [(0, 12)]
    apply(banks, delete_entry("b", "e2"))
    assert banks.match_text(text, "default") == (None, []) and len(banks) == 0


@pytest.mark.parametrize("merge_at", [1, 3, 1024])
def test_the_index_finds_what_a_scan_finds_through_adds_removes_and_merges(merge_at: int) -> None:
    rng = random.Random(merge_at)
    words = ["free", "crypto", "scam", "coin", "wire", "money", "visit", "now", "gift", "card"]
    index = TextIndex(merge_at=merge_at)
    held: dict[int, str] = {}
    for step in range(400):
        if held and rng.random() < 0.4:
            index_id = rng.choice(sorted(held))
            index.remove([(index_id, held.pop(index_id))])
        else:
            value = " ".join(rng.sample(words, rng.randint(1, 2)))
            if len(fold_term(value)) >= MIN_FOLDED:
                held[step] = value
                index.add([(step, value)])
        text = " ".join(rng.choices(words, k=8))
        expected = sorted(i for i, v in held.items() if fold_term(v) in fold(text).text)
        assert [i for i, _ in index.search(text, 0)] == expected
        assert len(index) == len(held)
    index.remove([(12345, "not held")])  # ignored
    index.compact()
    assert len(index) == len(held)


def test_every_occurrence_is_found_overlapping_ones_too() -> None:
    index = TextIndex()
    index.add([(1, "abab"), (2, "baba"), (3, "xyzw")])
    assert index.spans(fold_term("abababa")) == [(1, 0, 4), (2, 1, 5), (1, 2, 6), (2, 3, 7)]


def test_files_keep_phrases_where_the_format_has_room_for_them() -> None:
    entries = [
        BankEntry(bank="b", entry_id="spaced", signals={"text": "free crypto"}, added_by="t"),
        BankEntry(bank="b", entry_id="word", signals={"text": "scamcoin"}, added_by="t"),
    ]
    b = Bank(name="b", action=BankAction.BLOCK, changed_by="t")
    out = io.StringIO()
    # te's signal ends at whitespace: "free crypto" would come back as "free", noted "crypto".
    assert formats.write(Format.TE, b, entries, out) == formats.Written(entries=1, skipped=1)
    assert out.getvalue() == "text scamcoin\n"
    for fmt in (Format.TE_CSV, Format.HMA):
        out = io.StringIO()
        assert formats.write(fmt, b, entries, out) == formats.Written(entries=2, skipped=0)
        assert sorted(item.signals["text"] for item in formats.read(fmt, out.getvalue())) == ["free crypto", "scamcoin"]
    (body,) = formats.read(Format.HMA, json.dumps({"text": " visit scam-coin.example ", "note": "seed"}))
    assert body.fields()["signals"] == {"text": "visit scam-coin.example"} and body.note == "seed"
