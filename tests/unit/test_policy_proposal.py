"""Proposed policies: written beside the policies, valid or not written at all."""

import shutil
from pathlib import Path

import pytest
import yaml
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


def test_a_label_moves_from_ignore_to_labels_with_its_queue() -> None:
    policy = load_policies(PROJECT_ROOT / "config" / "policies").default
    assert "alcohol" in policy.ignore and "alcohol" not in policy.labels
    proposal = with_thresholds(policy, "alcohol", Thresholds(review_at=0.6, block_at=0.9), queue="drinks")
    assert proposal.labels["alcohol"].model_dump() == {"review_at": 0.6, "block_at": 0.9, "queue": "drinks"}
    assert proposal.ignore == [label for label in policy.ignore if label != "alcohol"]
    assert proposal.labels["drugs"] == policy.labels["drugs"]  # the rest as it was
    scores = dict.fromkeys(policy.known_labels(), 0.0)
    assert [outcome_under(proposal)(scores | {"alcohol": s}) for s in (0.5, 0.6, 0.9)] == ["allow", "review", "block"]
    assert outcome_under(policy)(scores | {"alcohol": 0.95}) == "allow"
    # A label the policy does not name at all (scored by the model) gets a rule the same way.
    unnamed = with_thresholds(policy, "emblem.red", Thresholds(review_at=0.3, block_at=1.0), queue="emblem-red")
    assert unnamed.labels["emblem.red"].queue == "emblem-red" and unnamed.ignore == policy.ignore
    assert outcome_under(policy)(scores | {"emblem.red": 0.1}) == "review"  # unknown_label: a person looks
    assert outcome_under(unnamed)(scores | {"emblem.red": 0.1}) == "allow"


def test_a_new_rule_needs_a_valid_queue() -> None:
    policy = load_policies(PROJECT_ROOT / "config" / "policies").default
    with pytest.raises(ValueError, match=r"policy default has no rule for 'alcohol': a queue is needed to add one"):
        with_thresholds(policy, "alcohol", Thresholds(review_at=0.6, block_at=0.9))
    with pytest.raises(ValueError, match="String should match pattern"):
        with_thresholds(policy, "alcohol", Thresholds(review_at=0.6, block_at=0.9), queue="Drinks!")


def test_a_default_proposal_takes_the_label_out_of_ignore(policies: Path) -> None:
    before = load_policies(policies)
    thresholds = Thresholds(review_at=0.6, block_at=0.9)
    written = write_proposal(policies, None, "alcohol", thresholds, "new rule", queue="drinks")
    raw = yaml.safe_load(written.read_text())
    assert raw["ignore"] == ["attire.revealing", "text.present"] and raw["labels"][
        "alcohol"
    ] == thresholds.model_dump() | {"queue": "drinks"}
    shutil.move(written, policies / "default.yaml")
    after = load_policies(policies)
    assert after.default.labels["alcohol"].queue == "drinks" and after.default.ignore == [
        "attire.revealing",
        "text.present",
    ]
    # demo inherits the default's rules and ignore list; kids has its own of both.
    assert after.for_tenant("demo").labels["alcohol"].block_at == 0.9
    assert "alcohol" not in after.for_tenant("demo").ignore
    assert after.for_tenant("kids") == before.for_tenant("kids")


def test_a_tenant_proposal_writes_the_inherited_ignore_list_without_the_label(policies: Path) -> None:
    before = load_policies(policies)
    written = write_proposal(
        policies, "demo", "alcohol", Thresholds(review_at=0.5, block_at=1.0), "new rule", queue="demo-drinks"
    )
    assert yaml.safe_load(written.read_text())["ignore"] == ["attire.revealing", "text.present"]  # demo.yaml had none
    shutil.move(written, policies / "tenants" / "demo.yaml")
    after = load_policies(policies)
    demo = after.for_tenant("demo")
    assert demo.labels["alcohol"].model_dump() == {"review_at": 0.5, "block_at": 1.0, "queue": "demo-drinks"}
    assert demo.ignore == ["attire.revealing", "text.present"] and demo.labels["sexual.any"].review_at == 0.045
    assert after.default == before.default  # only the tenant changes


def test_a_tenant_proposal_keeps_its_own_ignore_list(policies: Path) -> None:
    (policies / "tenants" / "kids.yaml").write_text(
        (policies / "tenants" / "kids.yaml")
        .read_text()
        .replace("ignore: [text.present]", "ignore: [text.present, emblem.red]")
    )
    written = write_proposal(
        policies, "kids", "emblem.red", Thresholds(review_at=0.2, block_at=0.7), "new rule", queue="emblem-red"
    )
    shutil.move(written, policies / "tenants" / "kids.yaml")
    kids = load_policies(policies).for_tenant("kids")
    assert kids.ignore == ["text.present"] and kids.labels["emblem.red"].queue == "emblem-red"
