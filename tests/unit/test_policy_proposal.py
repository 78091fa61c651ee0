"""Proposed policies: written beside the policies, valid or not written at all."""

import shutil
from pathlib import Path

import pytest
from modstream.core.events import Thresholds
from modstream.core.settings import PROJECT_ROOT
from modstream.policy.loader import PolicyError, load_policies
from modstream.policy.proposal import outcome_under, with_thresholds, write_proposal


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return Path(shutil.copytree(PROJECT_ROOT / "config" / "policies", tmp_path / "policies"))


def test_a_proposal_is_written_aside_and_applies_when_moved_into_place(policies: Path) -> None:
    before = load_policies(policies)
    written = write_proposal(policies, "kids", "sexual.any", Thresholds(review_at=0.2, block_at=0.6), "why\nbecause")
    assert written.parent == policies / "proposed" and written.read_text().startswith("# why\n# because\n")
    assert load_policies(policies).for_tenant("kids") == before.for_tenant("kids")  # not applied by itself
    shutil.move(written, policies / "tenants" / "kids.yaml")
    after = load_policies(policies).for_tenant("kids")
    assert (after.labels["sexual.any"].review_at, after.labels["sexual.any"].block_at) == (0.2, 0.6)
    assert after.labels["violence.gore"] == before.for_tenant("kids").labels["violence.gore"]  # the rest as it was
    assert after.version.startswith("proposed-") and after.audit_sample_rate == 0.05


def test_an_invalid_proposal_is_refused_and_leaves_no_file(policies: Path) -> None:
    with pytest.raises(PolicyError, match=r"review_at .* is above block_at"):
        write_proposal(policies, None, "sexual.any", Thresholds(review_at=0.9, block_at=0.5), "bad")
    assert not list((policies / "proposed").glob("*.yaml"))


def test_outcomes_under_a_policy_and_its_proposal() -> None:
    policy = load_policies(PROJECT_ROOT / "config" / "policies").default
    proposal = with_thresholds(policy, "sexual.any", Thresholds(review_at=0.6, block_at=0.7))
    scores = dict.fromkeys(policy.known_labels(), 0.0) | {"sexual.any": 0.65}
    assert (outcome_under(policy)(scores), outcome_under(proposal)(scores)) == ("review", "review")
    assert outcome_under(proposal)({**scores, "sexual.any": 0.75}) == "block"
    assert outcome_under(policy)({**scores, "sexual.any": 0.75}) == "review"
    with pytest.raises(ValueError, match="no rule for 'weapon'"):
        with_thresholds(policy, "weapon", Thresholds(review_at=0.1, block_at=0.2))
