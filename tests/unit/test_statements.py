"""Statements of reasons: the vocabulary against the database's, the policy section, the builder."""

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from modstream.core import dsa
from modstream.core.events import APPEAL_OVERTURNED, Outcome, StatementLifted
from modstream.core.settings import PROJECT_ROOT
from modstream.policy.loader import PolicyError, load_policies
from modstream.statements.build import lifted_for, puid_of, statement_for
from modstream.statements.service import ON_TOPIC
from pydantic import ValidationError

from tests.statement_cases import PATHS, STATEMENTS, UPLOADED, decision, policy

VOCABULARY = json.loads((Path(__file__).parent.parent / "data" / "dsa_vocabulary.json").read_text())


@pytest.mark.parametrize(
    ("field", "kind"),
    [
        ("decision_ground", dsa.DecisionGround),
        ("content_type", dsa.ContentType),
        ("category", dsa.Category),
        ("category_specification", dsa.Keyword),
        ("decision_visibility", dsa.Visibility),
        ("source_type", dsa.SourceType),
        ("automated_decision", dsa.AutomatedDecision),
        ("territorial_scope", dsa.Country),
    ],
)
def test_every_value_we_may_send_is_one_the_database_lists(field: str, kind: Any) -> None:
    assert sorted(get_args(kind)) == sorted(VOCABULARY[field])


@pytest.mark.parametrize(
    ("path", "detection", "automation", "category", "ground"),
    [
        ("model", "Yes", "AUTOMATED_DECISION_FULLY", "STATEMENT_CATEGORY_PROTECTION_OF_MINORS", "INCOMPATIBLE"),
        ("bank_match", "Yes", "AUTOMATED_DECISION_FULLY", "STATEMENT_CATEGORY_PROTECTION_OF_MINORS", "ILLEGAL"),
        ("model_then_human", "Yes", "AUTOMATED_DECISION_PARTIALLY", "STATEMENT_CATEGORY_VIOLENCE", "INCOMPATIBLE"),
        ("human", "No", "AUTOMATED_DECISION_NOT_AUTOMATED", "STATEMENT_CATEGORY_PROTECTION_OF_MINORS", "INCOMPATIBLE"),
    ],
)
def test_each_path_sets_the_automation_fields_and_the_mapped_category(
    path: Any, detection: str, automation: str, category: str, ground: str
) -> None:
    issued = statement_for(decision(path), policy().statements)  # type: ignore[arg-type]
    assert issued is not None and issued.path == path
    body = issued.statement
    assert (body["automated_detection"], body["automated_decision"]) == (detection, automation)
    assert body["category"] == category and body["decision_ground"] == f"DECISION_GROUND_{ground}_CONTENT"
    assert body["content_type"] == ["CONTENT_TYPE_IMAGE"] and body["source_type"] == "SOURCE_VOLUNTARY"
    assert body["territorial_scope"] == list(dsa.EEA) and body["puid"] == f"evt-{path}"
    assert body["content_date"] == "2026-12-01" and body["application_date"] >= "2026-12-01"
    assert None not in body.values()  # the database refuses some optional fields sent as null


def test_the_facts_say_what_decided_and_never_who_or_which_object() -> None:
    by_path = {path: statement_for(decision(path), policy().statements).statement["decision_facts"] for path in PATHS}  # type: ignore[arg-type, union-attr]
    assert "sexual.explicit scored 0.97, at or above its block threshold 0.85" in by_path["model"]
    assert "image_safety version 1" in by_path["model"] and "automatically" in by_path["model"]
    assert "entry ncmec-0042 of the hash bank csam-known (pdq, distance 12)" in by_path["bank_match"]
    assert "violence.gore scored 0.55, at or above its review threshold 0.35" in by_path["model_then_human"]
    assert "A reviewer of the moderation team" in by_path["model_then_human"]
    assert "drawn at random for quality review" in by_path["human"]
    for facts in by_path.values():
        assert "lena" not in facts and "acme/photo.jpg" not in facts and "uploads" not in facts
        assert "Policy tenant:acme version 7 applied." in facts


def test_only_a_restriction_has_a_statement() -> None:
    for outcome in (Outcome.ALLOW, Outcome.REVIEW, Outcome.ERROR):
        assert statement_for(decision("model", decision=outcome), policy().statements) is None  # type: ignore[arg-type]


def test_a_label_or_bank_without_a_mapping_is_reported_under_other() -> None:
    rules = policy().statements
    assert rules is not None
    human = statement_for(decision("human", labels=["emblem.starred"]), rules)
    assert human is not None and human.statement["category"] == "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"
    match = decision("bank_match").bank_match
    assert match is not None
    banked = statement_for(decision("bank_match", bank_match=match.model_copy(update={"bank": "spam"})), rules)
    assert banked is not None and banked.statement["category"] == "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"


def test_personal_data_in_the_facts_is_refused_before_anything_is_sent() -> None:
    match = decision("bank_match").bank_match
    assert match is not None
    leaky = decision("bank_match", bank_match=match.model_copy(update={"entry_id": "from-jane.doe@example.org"}))
    with pytest.raises(ValidationError, match=r"decision_facts looks like it holds personal data \(an e-mail"):
        statement_for(leaky, policy().statements)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("call +49 30 1234 5678", ["a phone number"]),
        ("write to jane.doe@example.org", ["an e-mail address"]),
        ("posted from 192.168.1.20", ["an IP address"]),
        ("by @jane_doe", ["a user handle"]),
        ("see https://example.org/u/jane", ["a web address"]),
        ("sexual.explicit scored 0.97, at or above 0.85 on 2026-12-07; 0.40 0.11", []),
    ],
)
def test_what_looks_like_personal_data(text: str, kinds: list[str]) -> None:
    assert dsa.personal_data(text) == kinds


def test_a_puid_is_the_event_id_when_the_database_takes_its_characters() -> None:
    assert puid_of("evt-1_A") == "evt-1_A"
    digest = puid_of("upload:2026.12.07")
    assert digest.startswith("sha256-") and len(digest) == 71 and puid_of("upload:2026.12.07") == digest


def test_a_label_that_can_block_without_a_mapping_is_a_policy_error() -> None:
    partial = STATEMENTS | {"labels": {k: v for k, v in STATEMENTS["labels"].items() if k != "violence.gore"}}
    with pytest.raises(ValidationError, match=r"violence\.gore can block .* but has no category to report it under"):
        policy(partial)
    with pytest.raises(ValidationError, match=r"statements\.labels names labels the policy does not have: drugs"):
        policy(STATEMENTS | {"labels": STATEMENTS["labels"] | {"drugs": STATEMENTS["other"]}})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"category": "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"}, "category"),  # removed 1 July 2025
        ({"keywords": ["KEYWORD_DANGEROUS_TOYS"]}, "keywords"),
        ({"terms": None}, "names its clause in `terms`"),
        ({"ground": "illegal"}, "names its legal ground in `law`"),
        ({"explanation": "questions to mod@example.org"}, "explanation looks like it holds personal data"),
        ({"explanation": "x" * 2001}, "at most 2000 characters"),
    ],
)
def test_a_bad_mapping_is_refused_at_load_naming_the_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    folder = tmp_path / "policies"
    (folder / "tenants").mkdir(parents=True)
    (folder / "default.yaml").write_text((PROJECT_ROOT / "config" / "policies" / "default.yaml").read_text())
    names = yaml.safe_load((folder / "default.yaml").read_text())["labels"]
    other = {k: v for k, v in (STATEMENTS["other"] | change).items() if v is not None}
    section = {"labels": dict.fromkeys(names, STATEMENTS["other"]), "other": other}
    (folder / "tenants" / "acme.yaml").write_text(json.dumps({"version": "s1", "statements": section}))
    with pytest.raises(PolicyError, match=rf"acme\.yaml: tenant acme: statements\.other.*{message}"):
        load_policies(folder)
    section["other"] = STATEMENTS["other"]
    (folder / "tenants" / "acme.yaml").write_text(json.dumps({"version": "s1", "statements": section}))
    assert load_policies(folder).for_tenant("acme").statements is not None


def overturn(event_id: str = "evt-human", **changes: Any) -> Any:
    """The decision an appeal's overturn publishes (review.service): a person's allow, source appeal."""
    fields: dict[str, Any] = {
        "event_id": event_id,
        "source": "appeal",
        "decision": Outcome.ALLOW,
        "reasons": [APPEAL_OVERTURNED],
        "labels": [],
        "reviewer": "ivan",
        "occurred_at": UPLOADED + timedelta(days=4, hours=23),
    }
    return decision("human", **fields | changes)


def test_an_overturn_supersedes_the_restrictions_statement_with_one_of_its_own_puid() -> None:
    rules = policy().statements
    assert rules is not None
    original = statement_for(decision("human"), rules)
    lifting = overturn()
    update = lifted_for(lifting)
    assert original is not None and update is not None
    assert update.supersedes == original.puid == "evt-human"
    assert update.puid == "evt-human-lifted" != original.puid
    assert re.fullmatch(dsa.PUID, update.puid)
    assert (update.event_id, update.tenant, update.decision_id) == ("evt-human", "acme", lifting.decision_id)
    assert update.lifted_at == lifting.occurred_at
    assert "appealed" in update.explanation and "lifted on 2026-12-06 (UTC)" in update.explanation
    # Nothing of who: not the reviewer of either decision, not the object, not the appellant.
    assert "lena" not in update.explanation and "ivan" not in update.explanation
    assert "acme/photo.jpg" not in update.explanation and not dsa.personal_data(update.explanation)
    # The overturn restricts nothing: it has no statement of its own, only the update.
    assert statement_for(lifting, rules) is None


def test_an_update_of_a_digested_puid_keeps_within_the_puid_rules() -> None:
    update = lifted_for(overturn("upload:2026.12.07"))
    assert update is not None
    assert update.supersedes == puid_of("upload:2026.12.07") and update.puid == update.supersedes + "-lifted"
    assert re.fullmatch(dsa.PUID, update.puid) and len(update.puid) <= 500


@pytest.mark.parametrize(
    "made",
    [
        decision("human"),  # the restriction itself
        decision("human", decision=Outcome.ALLOW),  # a reviewer's approve, not an appeal
        overturn(decision=Outcome.BLOCK),  # not a lift
        overturn(reasons=["human_review"]),  # an appeal's decision that overturned nothing
    ],
)
def test_only_an_appeals_overturn_has_an_update(made: Any) -> None:
    assert lifted_for(made) is None


def test_an_update_with_personal_data_or_the_originals_puid_is_refused() -> None:
    update = lifted_for(overturn())
    assert update is not None
    fields = update.model_dump()
    with pytest.raises(ValidationError, match=r"explanation looks like it holds personal data \(an e-mail"):
        StatementLifted(**fields | {"explanation": "Lifted; questions to jane.doe@example.org"})
    with pytest.raises(ValidationError, match="a puid of its own"):
        StatementLifted(**fields | {"puid": update.supersedes})


def test_the_submitter_tells_an_update_from_a_statement_on_the_topic() -> None:
    rules = policy().statements
    assert rules is not None
    issued, update = statement_for(decision("human"), rules), lifted_for(overturn())
    assert issued is not None and update is not None
    assert ON_TOPIC.validate_json(issued.to_bytes()) == issued
    assert ON_TOPIC.validate_json(update.to_bytes()) == update
