"""Hash banks over what was archived and reviewed: retroactive matching from the decision
archive (the topic holding none of those uploads), and reviewers' agreement per entry as
`modstream quality banks` reports it from verdicts a real outside client (confluent-kafka)
produced."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from modstream.bank.retro import match_recent
from modstream.bank.state import Banks
from modstream.bank.topic import put_bank, put_entry
from modstream.core.events import (
    Bank,
    BankAction,
    BankEntry,
    BankMatch,
    ImageHashes,
    ModerationDecision,
    Outcome,
    PdqHash,
    ReviewVerdict,
    new_id,
)
from modstream.core.settings import Settings
from modstream.core.topics import ensure_topics

from tests.archive import MODEL, Produce, archive_in_process, private_archive
from tests.commands import modstream
from tests.records import first_records

pytestmark = pytest.mark.integration
KNOWN = "f0" * 32
NEAR = "f0" * 31 + "ff"  # 4 bits from KNOWN
FAR = "0f" * 32


def uploaded(pdq: str, hours_ago: float, outcome: Outcome = Outcome.ALLOW) -> ModerationDecision:
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    return ModerationDecision(
        event_id=new_id(),
        tenant="t",
        bucket="uploads",
        key=f"k/{new_id()}.jpg",
        occurred_at=at,
        decision=outcome,
        scores={"nsfw": 0.1},
        model=MODEL,
        hashes=ImageHashes(sha256=new_id() * 2, md5=new_id(), pdq=PdqHash(hex=pdq, quality=90)),
        policy_id="default",
        policy_version="v1",
        uploaded_at=at,
        latency_ms=10.0,
    )


async def test_an_entry_added_now_decides_archived_uploads_of_the_window(stack_settings: Settings) -> None:
    settings = (await private_archive(stack_settings)).model_copy(update={"archive_flush_seconds": 1.0})
    near, far, old = uploaded(NEAR, 2), uploaded(FAR, 2), uploaded(NEAR, 30)
    producer = Produce(settings)
    for record in (near, far, old):
        producer.record("decisions", record)
    producer.flush()
    await archive_in_process(settings)

    # A decisions topic that holds none of them: what is found comes from the archive.
    later = settings.model_copy(
        update={"topic_decisions": f"{settings.topic_decisions}-later", "topic_review_requests": f"rr-{new_id()[:8]}"}
    )
    await ensure_topics(later)
    banks = Banks()
    entry = BankEntry(bank="known-bad", pdq=KNOWN, added_by="test")
    for change in (put_bank(Bank(name="known-bad", action=BankAction.BLOCK, changed_by="t")), put_entry(entry)):
        banks.apply(*change)
    report = await match_recent(later, banks, [entry], days=1)
    assert report.scanned >= 2  # near and far: old is before the window
    assert [d.event_id for d in report.decisions] == [near.event_id]
    published = await first_records(later, later.topic_decisions, ModerationDecision, [near.event_id], timeout=30)
    again = published[near.event_id]
    assert again.decision is Outcome.BLOCK and again.source == "retroactive"
    assert again.bank_match is not None and (again.bank_match.entry_id, again.bank_match.distance) == (
        entry.entry_id,
        4,
    )
    assert again.hashes == near.hashes and again.key == near.key


def verdict(bank: str, entry_id: str, action: BankAction, said: str) -> ReviewVerdict:
    event = new_id()
    return ReviewVerdict(
        event_id=event,
        tenant="t",
        bucket="uploads",
        key=f"k/{event}.jpg",
        job_id=event,
        job_kind="threshold_review",
        queue="banked",
        verdict=said,  # type: ignore[arg-type]
        labels=[],
        reviewer="rita",
        review_seconds=3.0,
        automatic_decision_id=new_id(),
        human_decision_id=new_id(),
        scores={},
        model=None,
        bank_match=BankMatch(bank=bank, entry_id=entry_id, signal="pdq", distance=3, action=action),
        policy_id="default",
        policy_version="v1",
    )


async def test_quality_banks_reports_each_entrys_agreement_from_the_verdicts(stack_settings: Settings) -> None:
    settings = await private_archive(stack_settings)
    producer = Produce(settings)
    said = ["remove"] * 7 + ["approve"] * 3
    for answer in said:
        producer.record("verdicts", verdict("check", "e1", BankAction.REVIEW, answer))
    producer.record("verdicts", verdict("good", "g1", BankAction.ALLOW, "approve"))
    producer.flush()
    done = modstream(settings, "quality", "banks", "--json")
    assert done.returncode == 0, done.stderr
    rows = {(r["bank"], r["entry_id"]): r for r in json.loads(done.stdout)}
    assert set(rows) == {("check", None), ("check", "e1"), ("good", None), ("good", "g1")}
    entry = rows["check", "e1"]
    assert (entry["confirmed"], entry["disputed"], entry["precision"]) == (7, 3, 0.7)
    low, high = entry["interval_95"]
    assert 0.39 < low < 0.7 < high < 0.92  # Wilson's interval for 7 of 10
    assert (rows["good", "g1"]["confirmed"], rows["good", "g1"]["disputed"]) == (1, 0)
