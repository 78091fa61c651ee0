"""Which banks a reviewer's remove puts the image in: the one chosen, and the policy's per label;
and a phrase of its text, in the policy's banks, only when it is in the text read."""

from datetime import UTC, datetime

import pytest
from modstream.bank import signals
from modstream.core.events import ImageHashes, PdqHash, TextLine, TextReading, entry_key
from modstream.core.settings import Settings
from modstream.policy.engine import LabelRule, Policy
from modstream.review.jobs import ReviewJob, Verdict, VerdictInput
from modstream.review.service import CannotBank, ReviewService
from pydantic import ValidationError

HASHES = ImageHashes(sha256="a" * 64, md5="b" * 32, pdq=PdqHash(hex="c" * 64, quality=80))
READ = TextReading(
    regions=2,
    lines=[
        TextLine(text="FREE CRYPTO GIVEAWAY", confidence=0.97, box=(0.1, 0.1, 0.9, 0.2)),
        TextLine(text="visit scam-coin.example", confidence=0.95, box=(0.1, 0.3, 0.9, 0.4)),
    ],
)


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
    # As the dashboard is composed: the bank room's check of a value.
    return ReviewService(Settings(), bank_names=lambda: banks, bank_value=lambda k, v: signals.get(k).validate(v))


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


def test_a_phrase_of_the_text_read_goes_to_the_policys_banks_as_given_beside_the_image() -> None:
    remove = VerdictInput(
        verdict=Verdict.REMOVE, labels=["sexual.explicit"], add_to_bank="mine", phrase=" free  crypto ", note="n"
    )
    entries = service("known-bad", "mine")._bank_entries(job(text=READ), "rita", remove)
    assert [(e.bank, e.entry_id, e.signals) for e in entries] == [
        ("known-bad", "review-ev1", {}),
        ("mine", "review-ev1", {}),
        ("known-bad", "review-ev1.text", {"text": "free  crypto"}),  # the policy's bank only
    ]
    phrase = entries[-1]
    assert (phrase.added_by, phrase.source_event_id, phrase.note, phrase.sha256) == ("rita", "ev1", "n", None)
    # Folded as text banks match: the phrase's case, spacing and look-alikes need not be the text's.
    leet = VerdictInput(verdict=Verdict.REMOVE, labels=["sexual.explicit"], phrase="SCAMC0IN")
    assert service("known-bad")._bank_entries(job(text=READ), "rita", leet)[-1].signals == {"text": "SCAMC0IN"}


def test_a_phrase_not_in_the_text_too_short_or_with_no_bank_to_go_to_is_refused() -> None:
    def refused(match: str, phrase: str, labels: list[str], **fields: object) -> None:
        verdict = VerdictInput(verdict=Verdict.REMOVE, labels=labels, phrase=phrase)
        with pytest.raises(CannotBank, match=match):
            service("known-bad")._bank_entries(job(**fields), "rita", verdict)

    label = ["sexual.explicit"]
    refused(
        "'free bitcoin' cannot be banked from this image: it is not in the text read", "free bitcoin", label, text=READ
    )
    refused("'free crypto' cannot be banked from this image: no text was read in it", "free crypto", label)
    refused("phrase: the phrase 'fr ee' is too short to bank", "fr ee", label, text=READ)
    refused(
        r"no label given maps to one in the policy's bank_on_remove \(sexual.explicit -> known-bad\)",
        "free crypto",
        ["violence.gore"],
        text=READ,
    )
    with pytest.raises(ValidationError, match="only a remove adds a phrase of the image's text to a bank"):
        VerdictInput(verdict=Verdict.APPROVE, labels=[], phrase="free crypto")


def test_an_overturned_appeal_withdraws_the_phrase_with_the_image() -> None:
    appeal = job(kind="appeal", job_id="ev1:appeal")
    decision = service("known-bad")._decision(appeal, "rita", VerdictInput(verdict=Verdict.APPROVE, labels=[]), 1.0)
    assert service("known-bad")._withdrawn_by(appeal, decision) == [
        entry_key("known-bad", "review-ev1"),
        entry_key("known-bad", "review-ev1.text"),
    ]
