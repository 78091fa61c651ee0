"""Per-entry and per-bank precision from reviewers' verdicts on bank matches."""

import pytest
from modstream.core.events import BankAction, BankMatch, ReviewVerdict
from modstream.quality.banks import bank_precision, confirms
from statsmodels.stats.proportion import proportion_confint


def verdict(bank: str, entry: str, action: BankAction, said: str, kind: str = "threshold_review") -> ReviewVerdict:
    return ReviewVerdict(
        event_id="e1",
        tenant="t",
        bucket="uploads",
        key="k",
        job_id="e1",
        job_kind=kind,  # type: ignore[arg-type]
        queue="q",
        verdict=said,  # type: ignore[arg-type]
        labels=[],
        reviewer="ana",
        review_seconds=1.0,
        automatic_decision_id="d",
        human_decision_id="h",
        scores={},
        model=None,
        bank_match=BankMatch(bank=bank, entry_id=entry, signal="pdq", distance=4, action=action),
        policy_id="default",
        policy_version="1",
    )


def test_a_remove_confirms_a_block_or_review_entry_and_an_approve_an_allow_entry() -> None:
    assert confirms(BankAction.BLOCK, "remove") and not confirms(BankAction.BLOCK, "approve")
    assert confirms(BankAction.REVIEW, "remove") and not confirms(BankAction.REVIEW, "approve")
    assert confirms(BankAction.ALLOW, "approve") and not confirms(BankAction.ALLOW, "remove")


def test_precision_per_entry_and_per_bank_with_wilson_intervals() -> None:
    block, allow = BankAction.BLOCK, BankAction.ALLOW
    rows = bank_precision(
        [
            verdict("bad", "a", block, "remove"),
            verdict("bad", "a", block, "remove"),
            verdict("bad", "a", block, "approve"),
            verdict("bad", "b", block, "remove"),
            verdict("bad", "b", block, "approve", kind="second_review"),  # the same item again: not counted
            verdict("good", "g", allow, "remove"),
        ]
    )
    table = {(r.bank, r.entry_id): (r.confirmed, r.disputed) for r in rows}
    assert table == {
        ("bad", None): (3, 1),
        ("bad", "a"): (2, 1),
        ("bad", "b"): (1, 0),
        ("good", None): (0, 1),
        ("good", "g"): (0, 1),
    }
    assert [(r.bank, r.entry_id) for r in rows][:3] == [("bad", None), ("bad", "a"), ("bad", "b")]
    whole = rows[0]
    assert whole.n == 4 and whole.precision == pytest.approx(0.75)
    assert whole.interval == pytest.approx(proportion_confint(3, 4, method="wilson"), abs=1e-4)


def test_verdicts_without_a_bank_match_are_not_counted() -> None:
    plain = verdict("bad", "a", BankAction.BLOCK, "remove").model_copy(update={"bank_match": None})
    assert bank_precision([plain]) == []
