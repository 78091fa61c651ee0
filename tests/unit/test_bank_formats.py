"""Bank import/export formats: each round-trips, reads a sample written as the real tool writes
it (the tool's source file named beside it, in facebook/ThreatExchange), and refuses bad input
naming the line."""

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from modstream.bank import formats
from modstream.bank.format_names import Format
from modstream.bank.formats import FormatError
from modstream.core.events import Bank, BankAction, BankEntry

# PdqSignal.get_examples() (python-threatexchange/threatexchange/signal_type/pdq/signal.py):
# pdq/data/bridge-mods, two edits of one photo.
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PDQ_2 = "f8f8f0cee0f4a84f06370a2a038f63f0b36e26d596621e1d33e6b39c4e9c9b22"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
BANK = Bank(name="known-bad", action=BankAction.BLOCK, changed_by="ops")


def entries() -> list[BankEntry]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        BankEntry(
            bank="known-bad",
            entry_id="e1",
            pdq=PDQ,
            pdq_quality=87,
            md5=MD5,
            sha256=SHA256,
            added_by="rita",
            source_event_id="upload-1",
            note="from review",
            occurred_at=start,
        ),
        BankEntry(bank="known-bad", entry_id="e2", pdq=PDQ_2, added_by="ops", occurred_at=start + timedelta(1)),
        BankEntry(bank="known-bad", entry_id="e3", sha256=SHA256, added_by="ops", occurred_at=start + timedelta(2)),
    ]


def written(fmt: Format, given: list[BankEntry] | None = None) -> tuple[str, formats.Written]:
    out = io.StringIO()
    counts = formats.write(fmt, BANK, entries() if given is None else given, out)
    return out.getvalue(), counts


def signals(items: list[formats.Imported]) -> list[tuple[str | None, str | None, str | None]]:
    return [(i.signals.get("pdq"), i.signals.get("md5"), i.signals.get("sha256")) for i in items]


def pdq(item: formats.Imported) -> str | None:
    return item.signals.get("pdq")


# --- plain ---------------------------------------------------------------------------


def test_plain_round_trip_keeps_every_pdq_hash_and_says_what_it_left_out() -> None:
    text, counts = written(Format.PLAIN)
    assert text == f"{PDQ}\n{PDQ_2}\n"
    assert counts == formats.Written(entries=2, skipped=1)  # e3 has no PDQ hash
    assert signals(formats.read(Format.PLAIN, text)) == [(PDQ, None, None), (PDQ_2, None, None)]


def test_plain_reads_pdq_photo_hasher_output_and_threatexchange_bare_hashes() -> None:
    # pdq/cpp/bin/pdq-photo-hasher.cpp: printf("%s,%d,%s\n", pdqhash.format().c_str(), quality, filename);
    hasher = f"{PDQ},100,pdq/data/bridge-mods/aaa-orig.jpg\n"
    # python-threatexchange/threatexchange/cli/dataset_cmd.py, _print_stdout with `dataset -P -S -s pdq`:
    # one signal type asked for, so no type name; -S, so no collaboration or opinion.
    dataset = f"{PDQ_2}\n"
    text = f"# a comment\n\n{hasher}   \n{dataset}{PDQ.upper()}\t55\n"
    first, second, third = formats.read(Format.PLAIN, text)
    assert (first.line, pdq(first), first.pdq_quality, first.note) == (3, PDQ, 100, "pdq/data/bridge-mods/aaa-orig.jpg")
    assert (second.line, pdq(second), second.pdq_quality, second.note) == (5, PDQ_2, None, None)
    assert (pdq(third), third.pdq_quality) == (PDQ, 55)  # upper case taken, written lower


def test_plain_refuses_bad_hex_and_bad_quality_naming_each_line() -> None:
    text = f"{PDQ}\n{PDQ[:-1]}\n{PDQ[:-1]}g\n{PDQ},101\n{PDQ} high\n"
    with pytest.raises(FormatError) as refused:
        formats.read(Format.PLAIN, text)
    assert [line for line, _ in refused.value.problems] == [2, 3, 4, 5]
    assert "line 2: " in str(refused.value) and "is not a pdq hash (64 hex digits)" in str(refused.value)
    assert "line 4: quality '101' is not a number from 0 to 100" in str(refused.value)


@pytest.mark.parametrize("fmt", list(Format))
def test_an_empty_file_is_refused_in_every_format(fmt: Format) -> None:
    with pytest.raises(FormatError, match="line 1: the file is empty"):
        formats.read(fmt, "")
    with pytest.raises(FormatError, match="line 2: the file is empty"):
        formats.read(fmt, "\n  \n")


def test_a_file_of_comments_only_is_refused_naming_its_last_line() -> None:
    with pytest.raises(FormatError, match="line 3: the file ends without a single hash"):
        formats.read(Format.PLAIN, "# hashes of\n\n# nothing\n")


# --- te --------------------------------------------------------------------------------


def test_te_round_trip_one_line_per_signal() -> None:
    text, counts = written(Format.TE)
    assert text.splitlines() == [f"pdq {PDQ}", f"md5 {MD5}", f"sha256 {SHA256}", f"pdq {PDQ_2}", f"sha256 {SHA256}"]
    assert counts == formats.Written(entries=3, skipped=0)
    read = formats.read(Format.TE, text)
    assert signals(read) == [
        (PDQ, None, None),
        (None, MD5, None),
        (None, None, SHA256),
        (PDQ_2, None, None),
        (None, None, SHA256),
    ]
    # No ids in this format: ids come from the hashes, so the same hash is the same entry
    # (importing the file again rewrites, never copies).
    assert read[2].entry_id == read[4].entry_id != read[0].entry_id
    assert formats.read(Format.TE, text) == read


def test_te_reads_what_threatexchange_writes() -> None:
    # python-threatexchange/threatexchange/cli/hash_cmd.py: print(hasher.get_name(), hash_str)
    hashed = f"pdq {PDQ}\n"
    # python-threatexchange/threatexchange/exchanges/impl/file_api.py, report_opinion:
    # wf.write(f"{nl}{s_type.get_name()} {signal}\n")
    appended = f"pdq {PDQ_2}\n"
    # python-threatexchange/threatexchange/cli/dataset_cmd.py, _print_stdout (`dataset -P`):
    # type name, signal, repr(collab_name), then the metadata's str (category, then tags).
    dataset = f"pdq {PDQ} 'Sample Signals' INVESTIGATION_SEED\npdq {PDQ_2} 'Partner Bank' POSITIVE_CLASS csam,known\n"
    read = formats.read(Format.TE, hashed + appended + dataset)
    assert signals(read) == [(PDQ, None, None), (PDQ_2, None, None), (PDQ, None, None), (PDQ_2, None, None)]
    assert [i.note for i in read] == [
        None,
        None,
        "'Sample Signals' INVESTIGATION_SEED",
        "'Partner Bank' POSITIVE_CLASS csam,known",
    ]


def test_te_refuses_unknown_signal_types_and_bad_hex_naming_the_line() -> None:
    text = (
        f"pdq {PDQ}\n"
        "url https://developers.facebook.com/docs/threat-exchange/reference/apis/\n"
        f"video_md5 {MD5}\n"
        "pdq facefacefaceface\n"
        f"{PDQ}\n"
        f"md5 {MD5}\n"
    )
    with pytest.raises(FormatError) as refused:
        formats.read(Format.TE, text)
    problems = dict(refused.value.problems)
    assert sorted(problems) == [2, 3, 4, 5]
    assert problems[2].startswith("unknown signal type 'url'") and "pdq, md5, sha256" in problems[2]
    assert "video files" in problems[3]
    assert problems[4] == "'facefacefaceface' is not a pdq hash (64 hex digits)"
    assert "--format plain" in problems[5]  # a bare hash in a te file


# --- te-csv ----------------------------------------------------------------------------


def test_te_csv_round_trip() -> None:
    text, _ = written(Format.TE_CSV)
    assert text.splitlines()[:2] == [
        "signal_type,signal_str,collab,category,tags",
        f"pdq,{PDQ},known-bad,POSITIVE_CLASS,",
    ]
    read = formats.read(Format.TE_CSV, text)
    assert signals(read) == signals(formats.read(Format.TE, written(Format.TE)[0]))
    assert read[0].note == "known-bad: POSITIVE_CLASS"


def test_te_csv_reads_threatexchange_dataset_csv() -> None:
    # python-threatexchange/threatexchange/cli/dataset_cmd.py, execute_print_signals with --csv:
    # csv.DictWriter(sys.stdout, ["signal_type", "signal_str", "collab", "category", "tags"]),
    # writeheader(), then one row per signal; tags joined with " " (rows end in \r\n: csv's default).
    text = (
        "signal_type,signal_str,collab,category,tags\r\n"
        f"pdq,{PDQ},Sample Signals,INVESTIGATION_SEED,\r\n"
        f"pdq,{PDQ_2},Partner Bank,POSITIVE_CLASS,csam known\r\n"
    )
    first, second = formats.read(Format.TE_CSV, text)
    assert (first.line, pdq(first), first.note) == (2, PDQ, "Sample Signals: INVESTIGATION_SEED")
    assert (second.line, pdq(second), second.note) == (3, PDQ_2, "Partner Bank: POSITIVE_CLASS csam known")


def test_te_csv_refuses_a_missing_header_and_bad_rows() -> None:
    with pytest.raises(FormatError, match="line 1: expected the header signal_type,signal_str"):
        formats.read(Format.TE_CSV, f"pdq,{PDQ},x,POSITIVE_CLASS,\n")
    text = f"signal_type,signal_str,collab,category,tags\nraw_text,hello,x,POSITIVE_CLASS,\npdq,{PDQ}0,x,,\n"
    with pytest.raises(FormatError) as refused:
        formats.read(Format.TE_CSV, text)
    assert [line for line, _ in refused.value.problems] == [2, 3]


# --- hma -------------------------------------------------------------------------------


def test_hma_round_trip_keeps_ids_quality_notes_and_the_source() -> None:
    text, counts = written(Format.HMA)
    assert counts == formats.Written(entries=3, skipped=0)
    document = json.loads(text)
    assert document[0] == {
        "id": "e1",
        "disable_until_ts": 1,
        "original_media_uri": None,
        "bank": {"name": "known-bad", "matching_enabled_ratio": 1.0},
        "signals": {"pdq": PDQ, "md5": MD5, "sha256": SHA256},
        "metadata": {
            "content_id": "upload-1",
            "json": {"added_by": "rita", "added_at": "2026-11-01T00:00:00+00:00", "pdq_quality": 87},
        },
        "note": "from review",
    }
    assert "note" not in document[1]  # as HMA leaves out a missing note
    read = formats.read(Format.HMA, text)
    assert [(i.line, i.entry_id) for i in read] == [(2, "e1"), (3, "e2"), (4, "e3")]
    assert read[0].fields() == {
        "entry_id": "e1",
        "pdq": PDQ,
        "pdq_quality": 87,
        "md5": MD5,
        "sha256": SHA256,
        "note": "from review",
        "source_event_id": "upload-1",
    }
    assert written(Format.HMA, [])[0] == "[]\n"
    with pytest.raises(FormatError, match="line 1: the file ends without a single hash"):
        formats.read(Format.HMA, "[]\n")


def test_hma_reads_bank_content_as_hma_answers_it_and_its_add_signal_body() -> None:
    # hasher-matcher-actioner/src/OpenMediaMatch/blueprints/curation.py, bank_get_content
    # (GET /c/bank/<bank>/content/<id>?include_signals=true): BankContentResponse
    # (.../schemas/curation.py) dumped by alias, "signals" / "metadata" / "note" popped when None.
    content = {
        "id": 1,
        "disable_until_ts": 1,
        "original_media_uri": None,
        "bank": {"name": "TEST_BANK", "matching_enabled_ratio": 1.0},
        "signals": {"pdq": PDQ},
        "metadata": {"content_id": "post-123", "content_uri": "https://example.com/p/123", "json": {"k": "v"}},
        "note": "Reported by user X",
    }
    # hasher-matcher-actioner/src/OpenMediaMatch/tests/test_e2e_workflow.py:
    # client.post(f"/c/bank/{bank_name}/signal", json={"pdq": pdq})
    body = {"pdq": PDQ_2}
    text = json.dumps([content, body], indent=2)
    first, second = formats.read(Format.HMA, text)
    assert (first.line, first.entry_id, pdq(first), first.note, first.source_event_id) == (
        2,
        "1",
        PDQ,
        "Reported by user X",
        "post-123",
    )
    assert (second.line, pdq(second), second.note) == (22, PDQ_2, None)
    assert second.entry_id.startswith("import-")
    # One object a line (JSON lines) reads the same.
    lines = "\n".join(json.dumps(x) for x in (content, body))
    assert signals(formats.read(Format.HMA, lines)) == signals([first, second])


def test_hma_refuses_bad_items_naming_line_and_item() -> None:
    text = (
        "[\n"
        + ",\n".join(
            json.dumps(x)
            for x in (
                {"pdq": PDQ},
                {"pdq": PDQ + "00"},
                {"url_md5": MD5},
                {"id": "a/b", "signals": {"pdq": PDQ}},
                {"id": 7, "signals": {"pdq": PDQ}, "disable_until_ts": 0},
                {"id": 8, "signals": {}},
                {"id": 9, "signals": {"pdq": PDQ}},
                {"id": 9, "signals": {"pdq": PDQ_2}},
                "pdq",
            )
        )
        + "\n]\n"
    )
    with pytest.raises(FormatError) as refused:
        formats.read(Format.HMA, text)
    problems = dict(refused.value.problems)
    assert sorted(problems) == [3, 4, 5, 6, 7, 9, 10]
    assert problems[3].startswith("item 2: ") and "is not a pdq hash" in problems[3]
    assert "unknown signal type 'url_md5'" in problems[4]
    assert "not usable as an entry id" in problems[5]
    assert "disable_until_ts 0" in problems[6]
    assert "no signal" in problems[7]
    assert "id 9 again (first on line 8)" in problems[9]
    assert "expected a JSON object" in problems[10]


def test_hma_refuses_broken_json_naming_the_line() -> None:
    with pytest.raises(FormatError, match="line 3: not JSON"):
        formats.read(Format.HMA, f'[\n{{"pdq": "{PDQ}"}},\n{{"pdq": }}\n]')
    with pytest.raises(FormatError, match="line 2: not JSON"):
        formats.read(Format.HMA, f'{{"pdq": "{PDQ}"}}\n{{"pdq"\n')
    with pytest.raises(FormatError, match="not closed"):
        formats.read(Format.HMA, f'[{{"pdq": "{PDQ}"}}')


def test_signal_names_and_normalises() -> None:
    assert formats.signal(" PDQ ", PDQ.upper()) == ("pdq", PDQ)
    with pytest.raises(ValueError, match="unknown signal type 'photo_md5'"):
        formats.signal("photo_md5", MD5)
    with pytest.raises(ValueError, match="is not a md5 hash"):
        formats.signal("md5", SHA256)
