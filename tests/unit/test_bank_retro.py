"""Retroactive matching's rules: which past uploads a new entry decides again, and how."""

from datetime import UTC, datetime, timedelta

from modstream.bank.retro import latest_uploads, only_these, retro_decisions
from modstream.bank.state import Banks
from modstream.bank.topic import put_bank, put_entry
from modstream.core.events import Bank, BankAction, BankEntry, ImageHashes, ModerationDecision, Outcome, PdqHash

NOW = datetime.now(UTC)
PDQ = "f" * 64


def decision(
    event_id: str, outcome: Outcome, *, source: str = "automatic", hours_ago: float = 1, pdq: str = PDQ
) -> ModerationDecision:
    return ModerationDecision(
        event_id=event_id,
        tenant="t",
        bucket="uploads",
        key=f"{event_id}.jpg",
        decision=outcome,
        source=source,  # type: ignore[arg-type]
        hashes=ImageHashes(sha256=event_id[0] * 64, md5="0" * 32, pdq=PdqHash(hex=pdq, quality=90)),
        policy_id="default",
        policy_version="1",
        uploaded_at=NOW - timedelta(hours=hours_ago),
        occurred_at=NOW - timedelta(hours=hours_ago),
        latency_ms=1.0,
    )


def banks_with(action: BankAction) -> tuple[Banks, list[BankEntry]]:
    banks = Banks()
    queue = "retro" if action is BankAction.REVIEW else None
    banks.apply(*put_bank(Bank(name="b", action=action, review_queue=queue, changed_by="t")))
    entry = BankEntry(bank="b", pdq="f" * 63 + "0", added_by="t")  # 4 bits from PDQ
    banks.apply(*put_entry(BankEntry(bank="b", pdq="0" * 64, added_by="t")))  # older: not re-matched
    banks.apply(*put_entry(entry))
    return banks, [entry]


def test_a_block_entry_decides_allowed_and_reviewed_uploads_again() -> None:
    banks, added = banks_with(BankAction.BLOCK)
    uploads = latest_uploads([decision("a1", Outcome.ALLOW), decision("b2", Outcome.REVIEW)], NOW - timedelta(days=1))
    scanned, decided = retro_decisions(only_these(banks, added), uploads)
    assert scanned == 2
    assert [(d.event_id, d.decision, d.reasons) for d in decided] == [
        ("a1", Outcome.BLOCK, ["hash_match", "retroactive"]),
        ("b2", Outcome.BLOCK, ["hash_match", "retroactive"]),
    ]
    assert decided[0].bank_match is not None and decided[0].bank_match.distance == 4
    assert decided[0].bank_match.entry_id == added[0].entry_id
    assert decided[0].key == "a1.jpg" and decided[0].hashes is not None
    assert {d.source for d in decided} == {"retroactive"}


def test_a_review_entry_sends_allowed_uploads_to_its_queue_but_leaves_blocked_ones() -> None:
    banks, added = banks_with(BankAction.REVIEW)
    uploads = latest_uploads([decision("a1", Outcome.ALLOW), decision("b2", Outcome.BLOCK)], NOW - timedelta(days=1))
    _, decided = retro_decisions(only_these(banks, added), uploads)
    assert [(d.event_id, d.decision, d.review_queue) for d in decided] == [("a1", Outcome.REVIEW, "retro")]


def test_people_s_decisions_old_uploads_other_hashes_and_allow_banks_are_left_alone() -> None:
    banks, added = banks_with(BankAction.BLOCK)
    history = [
        decision("a1", Outcome.REVIEW),
        decision("a1", Outcome.ALLOW, source="human", hours_ago=0.5),  # a person decided it
        decision("f6", Outcome.BLOCK, hours_ago=2),
        decision("f6", Outcome.ALLOW, source="appeal", hours_ago=1),  # a person overturned it on appeal
        decision("c3", Outcome.ALLOW, hours_ago=49),  # before the window
        decision("d4", Outcome.ALLOW, pdq="0f" * 32),  # another picture
    ]
    uploads = latest_uploads(history, NOW - timedelta(days=2))
    assert {u.event_id for u in uploads} == {"a1", "d4", "f6"}
    assert all(u.by_person for u in uploads if u.event_id in ("a1", "f6"))
    assert retro_decisions(only_these(banks, added), uploads)[1] == []
    allow, allowed = banks_with(BankAction.ALLOW)
    fresh = latest_uploads([decision("e5", Outcome.REVIEW)], NOW - timedelta(days=1))
    assert retro_decisions(only_these(allow, allowed), fresh)[1] == []


def test_the_latest_decision_of_an_upload_counts() -> None:
    later = decision("a1", Outcome.BLOCK, hours_ago=0.1)
    (upload,) = latest_uploads([decision("a1", Outcome.ALLOW), later], NOW - timedelta(days=1))
    assert upload.decision is Outcome.BLOCK and upload.decided_at == later.occurred_at
