"""Which banks a reviewer's remove puts the image in: the one chosen, and the policy's per label."""

from datetime import UTC, datetime

import pytest
from modstream.core.events import ImageHashes, PdqHash
from modstream.core.settings import Settings
from modstream.policy.engine import LabelRule, Policy
from modstream.review.jobs import ReviewJob, Verdict, VerdictInput
from modstream.review.service import CannotBank, ReviewService
from pydantic import ValidationError

HASHES = ImageHashes(sha256="a" * 64, md5="b" * 32, pdq=PdqHash(hex="c" * 64, quality=80))


def job(**fields: object) -> ReviewJob:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "job_id": "ev1",
        "queue": "q",
        "decision_id": "d1",
        "tenant": "t",
        "bucket": "uploads",
        "key": "k.jpg",
        "scores": {"sexual.explicit": 0.9},
        "triggered": [],
        "reasons": [],
        "model": None,
        "hashes": HASHES,
        "policy_id": "default",
        "policy_version": "1",
        "uploaded_at": now,
        "enqueued_at": now,
        "bank_on_remove": {"sexual.explicit": "known-bad"},
    }
    return ReviewJob.model_validate(values | fields)


def service(*banks: str) -> ReviewService:
    return ReviewService(Settings(), bank_names=lambda: banks)


def test_a_remove_naming_a_policy_label_banks_the_image_with_who_and_from_where() -> None:
    entries = service("known-bad")._bank_entries(
        job(), "rita", VerdictInput(verdict=Verdict.REMOVE, labels=["sexual.explicit"], note="again")
    )
    assert [(e.bank, e.entry_id, e.added_by, e.source_event_id, e.note) for e in entries] == [
        ("known-bad", "review-ev1", "rita", "ev1", "again")
    ]
    (entry,) = entries
    assert (entry.sha256, entry.md5, entry.pdq, entry.pdq_quality) == ("a" * 64, "b" * 32, "c" * 64, 80)


def test_the_chosen_bank_and_the_policys_both_and_nothing_without_a_remove() -> None:
    banked = service("known-bad", "mine")._bank_entries(
        job(), "rita", VerdictInput(verdict=Verdict.REMOVE, labels=["sexual.explicit"], add_to_bank="mine")
    )
    assert sorted(e.bank for e in banked) == ["known-bad", "mine"]
    approve = VerdictInput(verdict=Verdict.APPROVE, labels=["sexual.explicit"])
    assert service("known-bad")._bank_entries(job(), "rita", approve) == []
    other = VerdictInput(verdict=Verdict.REMOVE, labels=["violence.gore"])
    assert service("known-bad")._bank_entries(job(), "rita", other) == []
    second = job(kind="second_review")
    chosen = VerdictInput(verdict=Verdict.REMOVE, labels=["sexual.explicit"], add_to_bank="known-bad")
    assert service("known-bad")._bank_entries(second, "rita", chosen) == []  # a second review decides nothing


def test_a_bank_that_does_not_exist_or_a_job_without_hashes_is_refused() -> None:
    remove = VerdictInput(verdict=Verdict.REMOVE, labels=["sexual.explicit"])
    with pytest.raises(CannotBank, match="no bank named known-bad"):
        service("other")._bank_entries(job(), "rita", remove)
    with pytest.raises(CannotBank, match="carries no hashes"):
        service("known-bad")._bank_entries(job(hashes=None), "rita", remove)
    with pytest.raises(ValidationError, match="only a remove adds the image to a bank"):
        VerdictInput(verdict=Verdict.APPROVE, labels=[], add_to_bank="known-bad")


def test_a_policy_banks_only_labels_it_has() -> None:
    rule = LabelRule(review_at=0.5, block_at=0.9)
    Policy(id="p", version="1", labels={"a": rule}, ignore=["b"], bank_on_remove={"a": "x", "b": "y"})
    with pytest.raises(ValidationError, match="bank_on_remove names labels the policy does not have: c"):
        Policy(id="p", version="1", labels={"a": rule}, bank_on_remove={"c": "x"})
    with pytest.raises(ValidationError):
        Policy(id="p", version="1", labels={"a": rule}, bank_on_remove={"a": "Not A Bank"})
