"""The policy engine: the decision rule (table-driven), audit sampling, loading, reloading."""

import os
import shutil
import time
from pathlib import Path

import pytest
from modstream.core.events import Outcome
from modstream.core.settings import PROJECT_ROOT
from modstream.models.taxonomy import read_taxonomy
from modstream.policy.engine import AUDIT_QUEUE, Policy, evaluate, in_audit_sample
from modstream.policy.loader import PolicyError, load_policies
from modstream.policy.watcher import PolicyStore

P = Policy.model_validate(
    {
        "id": "p",
        "version": "1",
        "ignore": ["sfw"],
        "labels": {
            "nsfw": {"review_at": 0.4, "block_at": 0.85, "queue": "sexual"},
            "nsfl": {"review_at": 0.35, "block_at": 0.8, "queue": "gore"},
        },
    }
)


@pytest.mark.parametrize(
    ("scores", "decision", "triggered", "queue"),
    [
        ({"nsfw": 0.0, "nsfl": 0.0, "sfw": 1.0}, Outcome.ALLOW, [], None),
        ({"nsfw": 0.3999, "nsfl": 0.3499}, Outcome.ALLOW, [], None),
        ({"nsfw": 0.4, "nsfl": 0.0}, Outcome.REVIEW, [("nsfw", 0.4, "review")], "sexual"),  # exactly review_at
        ({"nsfw": 0.8499, "nsfl": 0.0}, Outcome.REVIEW, [("nsfw", 0.4, "review")], "sexual"),
        ({"nsfw": 0.85, "nsfl": 0.0}, Outcome.BLOCK, [("nsfw", 0.85, "block")], None),  # exactly block_at
        ({"nsfw": 0.5, "nsfl": 0.6}, Outcome.REVIEW, [("nsfl", 0.35, "review"), ("nsfw", 0.4, "review")], "gore"),
        ({"nsfw": 0.5, "nsfl": 0.9}, Outcome.BLOCK, [("nsfl", 0.8, "block")], None),  # block wins over review
        ({"nsfw": 1.0, "nsfl": 0.95}, Outcome.BLOCK, [("nsfw", 0.85, "block"), ("nsfl", 0.8, "block")], None),
        ({"nsfw": 0.1, "nsfl": 0.1, "sfw": 0.0}, Outcome.ALLOW, [], None),  # an ignored label never triggers
    ],
)
def test_decision_rule(
    scores: dict[str, float], decision: Outcome, triggered: list[tuple[str, float, str]], queue: str | None
) -> None:
    verdict = evaluate(scores, P, content_id="c")
    assert verdict.decision is decision
    assert [(t.label, t.threshold, t.level) for t in verdict.triggered] == triggered
    assert all(t.score == scores[t.label] for t in verdict.triggered)
    assert verdict.reasons == (["threshold"] if triggered else [])
    assert verdict.review_queue == queue  # the highest triggering label's queue


def test_audit_sample_is_deterministic_and_near_the_rate() -> None:
    ids = [f"event-{i}" for i in range(20_000)]
    sampled = [i for i in ids if in_audit_sample(i, 0.05)]
    assert 0.04 < len(sampled) / len(ids) < 0.06
    assert sampled == [i for i in ids if in_audit_sample(i, 0.05)]
    assert not any(in_audit_sample(i, 0.0) for i in ids[:1000])
    assert all(in_audit_sample(i, 1.0) for i in ids[:1000])


def test_audit_samples_automatic_decisions_but_never_changes_them() -> None:
    always = P.model_copy(update={"audit_sample_rate": 1.0})
    allow = evaluate({"nsfw": 0.1, "nsfl": 0.0}, always, content_id="c")
    block = evaluate({"nsfw": 0.9, "nsfl": 0.0}, always, content_id="c")
    review = evaluate({"nsfw": 0.5, "nsfl": 0.0}, always, content_id="c")
    assert (allow.decision, allow.reasons, allow.review_queue) == (Outcome.ALLOW, ["audit_sample"], AUDIT_QUEUE)
    assert (block.decision, block.reasons, block.review_queue) == (
        Outcome.BLOCK,
        ["threshold", "audit_sample"],
        AUDIT_QUEUE,
    )
    assert (review.reasons, review.review_queue) == (["threshold"], "sexual")  # already going to a person
    assert (allow.audit_sample, block.audit_sample, review.audit_sample) == (True, True, False)
    assert not evaluate({"nsfw": 0.1, "nsfl": 0.0}, P, content_id="c").audit_sample  # P samples nothing


def test_a_policy_lists_the_thresholds_a_decision_carries() -> None:
    assert {label: (t.review_at, t.block_at) for label, t in P.thresholds().items()} == {
        label: (rule.review_at, rule.block_at) for label, rule in P.labels.items()
    }


@pytest.mark.parametrize(
    ("scores", "decision", "reasons", "queue"),
    [
        # a new model brings a label the policy does not know
        (
            {"nsfw": 0.1, "nsfl": 0.1, "sfw": 0.7, "weapons": 0.1},
            Outcome.REVIEW,
            ["unknown_label:weapons"],
            "labels-changed",
        ),
        # a new model drops a label the policy has rules for
        ({"nsfw": 0.1, "sfw": 0.9}, Outcome.REVIEW, ["missing_label:nsfl"], "labels-changed"),
        ({}, Outcome.REVIEW, ["missing_label:nsfl", "missing_label:nsfw"], "labels-changed"),
        # a known label over its review threshold keeps its own queue, with the drift reason added
        ({"nsfw": 0.5, "sfw": 0.5}, Outcome.REVIEW, ["threshold", "missing_label:nsfl"], "sexual"),
        # a block from a known label stands
        ({"nsfw": 0.9, "weapons": 0.1}, Outcome.BLOCK, ["threshold"], None),
    ],
)
def test_label_drift_between_model_and_policy_goes_to_review(
    scores: dict[str, float], decision: Outcome, reasons: list[str], queue: str | None
) -> None:
    verdict = evaluate(scores, P, content_id="never-sampled")
    assert (verdict.decision, verdict.reasons, verdict.review_queue) == (decision, reasons, queue)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


DEFAULT = """
id: default
version: "d1"
audit_sample_rate: 0.01
ignore: [sfw]
labels:
  nsfw: {review_at: 0.4, block_at: 0.85, queue: sexual}
  nsfl: {review_at: 0.35, block_at: 0.8, queue: gore}
"""


def test_tenant_override_changes_only_what_it_names(tmp_path: Path) -> None:
    write(tmp_path, "default.yaml", DEFAULT)
    write(tmp_path, "tenants/kids.yaml", 'version: "k1"\nlabels:\n  nsfw: {review_at: 0.1}\n')
    policies = load_policies(tmp_path, ["nsfl", "nsfw", "sfw"])
    kids = policies.for_tenant("kids")
    assert (kids.id, kids.version, kids.audit_sample_rate) == ("tenant:kids", "k1", 0.01)
    assert kids.labels["nsfw"].model_dump() == {"review_at": 0.1, "block_at": 0.85, "queue": "sexual"}
    assert kids.labels["nsfl"] == policies.default.labels["nsfl"]
    assert policies.for_tenant("someone-else") is policies.default
    assert policies.versions == {"default": "d1", "kids": "k1"}


@pytest.mark.parametrize(
    ("file", "text", "tenant", "field"),
    [
        (
            "default.yaml",
            DEFAULT.replace("review_at: 0.4", "review_at: 0.9"),
            "default",
            "labels.nsfw: Value error, review_at (0.9)",
        ),
        ("default.yaml", DEFAULT.replace("block_at: 0.85", "block_at: 1.5"), "default", "labels.nsfw.block_at"),
        ("default.yaml", DEFAULT.replace("review_at: 0.35", "review_at: -0.1"), "default", "labels.nsfl.review_at"),
        ("default.yaml", DEFAULT.replace("nsfl:", "gore:"), "default", "labels.gore: the model has no label 'gore'"),
        ("default.yaml", DEFAULT.replace('version: "d1"', ""), "default", "version: Field required"),
        (
            "default.yaml",
            DEFAULT.replace("audit_sample_rate: 0.01", "audit_sample_rate: 2"),
            "default",
            "audit_sample_rate",
        ),
        ("default.yaml", "labels: [unclosed", "default", "not valid YAML"),
        (
            "tenants/kids.yaml",
            'version: "k"\nlabels:\n  nsfw: {review_at: 0.95}\n',
            "kids",
            "labels.nsfw: Value error, review_at (0.95)",
        ),
        (
            "tenants/kids.yaml",
            'version: "k"\nlabels:\n  weapons: {review_at: 0.1, block_at: 0.2}\n',
            "kids",
            "labels.weapons: the model has no label",
        ),
        ("tenants/kids.yaml", 'version: "k"\nlabels:\n  nsfw: {queue: "Not A Queue"}\n', "kids", "labels.nsfw.queue"),
        ("tenants/Bad Name.yaml", 'version: "k"\n', "'Bad Name'", "not a valid tenant id"),
        (
            "default.yaml",
            DEFAULT.replace("ignore: [sfw]", "ignore: [sfw, gore]"),
            "default",
            "the model has no label 'gore'",
        ),
        (
            "tenants/kids.yaml",
            'version: "k"\nreview:\n  severe: [nsfl, gore]\n',
            "kids",
            "review.severe names labels the policy does not have: gore",
        ),
        ("tenants/kids.yaml", 'version: "k"\nreview:\n  due: {severe_hours: 0}\n', "kids", "review.due.severe_hours"),
        (
            "tenants/kids.yaml",
            'version: "k"\nreview:\n  exposure: {severe_unblurred_hours_per_day: 25}\n',
            "kids",
            "review.exposure.severe_unblurred_hours_per_day",
        ),
    ],
)
def test_a_bad_policy_is_refused_naming_file_tenant_and_field(
    tmp_path: Path, file: str, text: str, tenant: str, field: str
) -> None:
    write(tmp_path, "default.yaml", DEFAULT)
    path = write(tmp_path, file, text)
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path, ["nsfl", "nsfw", "sfw"])
    message = str(caught.value)
    assert message.startswith(f"{path}: tenant {tenant}")
    assert field in message


def test_the_shipped_policies_load_against_the_taxonomys_labels() -> None:
    labels = list(read_taxonomy(PROJECT_ROOT / "model_repository").labels)
    policies = load_policies(PROJECT_ROOT / "config" / "policies", labels)
    assert policies.default.id == "default" and "kids" in policies.tenants


def test_a_changed_policy_is_picked_up_and_an_invalid_one_keeps_the_old(tmp_path: Path) -> None:
    default = write(tmp_path, "default.yaml", DEFAULT)
    store = PolicyStore(tmp_path, ["nsfl", "nsfw", "sfw"])
    assert store.refresh() is None  # nothing changed

    bump(default, DEFAULT.replace('"d1"', '"d2"').replace("review_at: 0.4", "review_at: 0.3"))
    assert store.refresh() == {"default": "d2"}
    assert store.current.default.labels["nsfw"].review_at == 0.3

    bump(default, DEFAULT.replace('"d1"', '"d3"').replace("block_at: 0.85", "block_at: 7"))
    assert store.refresh() is None
    assert store.current.default.version == "d2"  # the broken file is not used

    tenant = write(tmp_path, "tenants/kids.yaml", 'version: "k1"\n')
    bump(default, DEFAULT.replace('"d1"', '"d4"'))
    assert store.refresh() == {"default": "d4", "kids": "k1"}
    tenant.unlink()
    assert store.refresh() == {"kids": "(removed)"}


def bump(path: Path, text: str) -> None:
    """Rewrite a file so that its modification time surely changes."""
    path.write_text(text)
    later = time.time_ns() + 10_000_000
    os.utime(path, ns=(later, later))


def test_the_store_notes_a_new_label_set_once(tmp_path: Path) -> None:
    write(tmp_path, "default.yaml", DEFAULT)
    store = PolicyStore(tmp_path, ["nsfl", "nsfw", "sfw"])
    assert not store.observe_model_labels(["sfw", "nsfw", "nsfl"])
    assert store.observe_model_labels(["nsfl", "nsfw", "sfw", "weapons"])
    assert not store.observe_model_labels(["nsfl", "nsfw", "sfw", "weapons"])
    # policy files are now checked against the new labels: a rule for "weapons" is accepted
    bump(tmp_path / "default.yaml", DEFAULT.replace('"d1"', '"d2"') + "  weapons: {review_at: 0.5, block_at: 0.9}\n")
    assert store.refresh() == {"default": "d2"}


def test_a_process_that_must_run_answers_with_the_defaults_while_the_files_are_invalid(tmp_path: Path) -> None:
    from modstream.core.appeals import AppealRules
    from modstream.policy.watcher import Sections

    folder = tmp_path / "policies"
    shutil.copytree(PROJECT_ROOT / "config" / "policies", folder)
    broken = folder / "tenants" / "acme.yaml"
    broken.write_text('version: "x"\nappeals: {window_days: 10}\n')  # under six months
    rules = Sections(folder, lambda policy: policy.appeals, AppealRules(), retry_seconds=0.0)
    assert rules("acme") == AppealRules()
    broken.write_text('version: "y"\nappeals: {window_days: 365, queue: appeals-acme}\n')
    assert rules("acme").window_days == 365 and rules("acme").queue == "appeals-acme"
    assert rules("kids") == AppealRules()  # a tenant that sets none: the defaults


def test_a_tenant_changes_the_review_section_key_by_key(tmp_path: Path) -> None:
    write(tmp_path, "default.yaml", DEFAULT + "review:\n  severe: [nsfl]\n  due: {severe_hours: 2}\n")
    write(tmp_path, "tenants/kids.yaml", 'version: "k1"\nreview:\n  exposure: {break_after_severe: 5}\n')
    policies = load_policies(tmp_path, ["nsfl", "nsfw", "sfw"])
    kids = policies.for_tenant("kids").review
    assert kids.severe == {"nsfl"} and kids.due.severe_hours == 2  # kept from the default
    assert kids.exposure.break_after_severe == 5 and policies.default.review.exposure.break_after_severe == 20
    assert kids.severity_of(["nsfw", "nsfl"]) == "severe" and kids.severity_of(["nsfw"]) == "standard"
