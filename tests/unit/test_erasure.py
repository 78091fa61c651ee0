"""Erasure's pure parts: the receipt, ids refused before any lookup, the score cache dropping
erased images, and the bank entries taken from an upload found for their tombstones."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from modstream.bank import ops
from modstream.bank.state import Banks
from modstream.core.events import BankEntry, NotAnId, check_ids, entry_key
from modstream.core.settings import Settings
from modstream.erasure.receipt import ErasureReceipt, Place
from modstream.erasure.run import kept
from modstream.worker.duplicates import ScoreCache

from tests.commands import modstream
from tests.unit.test_bank_state import apply, bank
from tests.unit.test_score_cache import scores


def test_the_receipt_counts_what_each_place_held_and_says_what_was_kept() -> None:
    started = datetime(2026, 12, 7, 12, tzinfo=UTC)
    receipt = ErasureReceipt(
        requested_by="ivan",
        asked=["subject:user-7"],
        event_ids=["e1", "e2"],
        started_at=started,
        finished_at=started + timedelta(seconds=1.25),
        places=[
            Place(name="image versions (object store)", found=2, removed=2),
            Place(name="archive: decisions", found=3, removed=3, note="2 files deleted, 4 snapshots expired"),
            Place(name="worker score caches", found=None, removed=1),
        ],
        kept=kept(Settings()),
    )
    assert (receipt.seconds, receipt.removed) == (1.25, 6)
    text = receipt.text()
    assert "asked by ivan for subject:user-7" in text and "2 uploads, 6 items removed in 1.25 s" in text
    assert "archive: decisions" in text and "found     3  removed     3    0.00 s  (2 files deleted" in text
    assert "found     -  removed     1" in text  # a cache in workers' memory cannot be counted
    assert "statements of reasons" in text and "gone after 7 days" in text
    assert ErasureReceipt.model_validate_json(receipt.model_dump_json()) == receipt


@pytest.mark.parametrize(
    ("event_ids", "subject", "said"),
    [
        (["*"], None, "'*' is not an event id"),
        (["ok-1", "with space"], None, "'with space' is not an event id"),
        ([], "user/7", "'user/7' is not a subject"),
        (["x" * 129], None, "is not an event id"),
    ],
)
def test_an_id_no_upload_can_have_is_refused_before_any_lookup(
    event_ids: list[str], subject: str | None, said: str
) -> None:
    with pytest.raises(NotAnId, match=said):
        check_ids(event_ids, subject)
    check_ids(["a1b2", "t:1.x_y-z"], "user-7f3a")  # what uploads and subjects look like


def test_the_score_cache_drops_erased_images_and_keeps_the_rest() -> None:
    cache = ScoreCache(10, 60)
    cache.put("a", scores("1"))
    cache.put("b", scores("1"))
    assert cache.drop(["a", "never-seen"]) == 1
    assert cache.get("a") is None and cache.get("b") == scores("1")


def test_bank_entries_taken_from_erased_uploads_get_tombstones_and_no_other() -> None:
    def taken(entry_id: str, source: str | None) -> tuple[str, bytes]:
        record = BankEntry(bank="b", entry_id=entry_id, sha256="ab" * 32, added_by="lena", source_event_id=source)
        return entry_key("b", entry_id), record.to_bytes()

    banks = apply(Banks(), bank("b"), taken("review-e1", "e1"), taken("review-e2", "e2"), taken("imported", None))
    assert ops.erase_taken_from(banks, ["e1", "e3"]) == [(entry_key("b", "review-e1"), None)]
    assert ops.erase_taken_from(banks, []) == []


def test_an_upload_naming_a_subject_no_person_can_have_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff not read: refused first")
    # No server runs here: a refusal that reached for the broker or the store would fail otherwise.
    done = modstream(Settings(state_dir=tmp_path), "upload", str(tmp_path), "--tenant", "t", "--subject", "a b")
    assert done.returncode == 2 and "'a b' is not a subject" in done.stderr
