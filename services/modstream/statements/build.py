"""A restriction -> its statement of reasons; an appeal's overturn -> the updated statement
that supersedes it. Pure: a decision and the tenant's rules in, a checked statement out (or
none, when the decision restricts nothing and lifts nothing).

How the decision was taken sets the two automation fields (the database's definitions,
``additional-explanation-for-statement-attributes.md`` §9-10: detection is about finding
the content, decision about judging it):

| path | when | automated_detection | automated_decision |
| --- | --- | --- | --- |
| model | a label's score reached its block threshold | Yes | FULLY |
| bank_match | a hash bank's entry matched (at upload or later) | Yes | FULLY |
| model_then_human | a person removed what a label or a bank had flagged, seeing the scores | Yes | PARTIALLY |
| human | a person removed an audit sample the models had let through | No | NOT_AUTOMATED |
"""

import hashlib
import re
from datetime import UTC

from modstream.core.dsa import PUID, AutomatedDecision, Statement
from modstream.core.events import (
    APPEAL_OVERTURNED,
    HASH_MATCH,
    THRESHOLD,
    DecisionPath,
    ModerationDecision,
    Outcome,
    StatementIssued,
    StatementLifted,
)
from modstream.policy.statements import Reporting, StatementRules

AUTOMATION: dict[DecisionPath, tuple[str, AutomatedDecision]] = {
    "model": ("Yes", "AUTOMATED_DECISION_FULLY"),
    "bank_match": ("Yes", "AUTOMATED_DECISION_FULLY"),
    "model_then_human": ("Yes", "AUTOMATED_DECISION_PARTIALLY"),
    "human": ("No", "AUTOMATED_DECISION_NOT_AUTOMATED"),
}
FACTS_LIMIT = 5000


def decision_path(decision: ModerationDecision) -> DecisionPath:
    if decision.source == "human":
        flagged = THRESHOLD in decision.reasons or HASH_MATCH in decision.reasons
        return "model_then_human" if flagged else "human"
    return "bank_match" if decision.bank_match is not None else "model"


def puid_of(event_id: str) -> str:
    """The statement's id at the database, from the event id: the id itself when the database
    takes its characters, else a digest of it (event ids may hold '.' and ':')."""
    if re.fullmatch(PUID, event_id) and len(event_id) <= 500:
        return event_id
    return "sha256-" + hashlib.sha256(event_id.encode()).hexdigest()


# The updated statement's puid is the superseded one's with this suffix (the database never sees it).
LIFTED_SUFFIX = "-lifted"


def lifted_puid(event_id: str) -> str:
    """The puid of the updated statement after an appeal lifted the restriction of ``event_id``:
    never the restriction's own (the topic is keyed by puid), within the database's rules."""
    return puid_of(event_id) + LIFTED_SUFFIX


def lifted_for(decision: ModerationDecision) -> StatementLifted | None:
    """The updated statement when ``decision`` is an appeal's overturn of a restriction: it
    supersedes the restriction's statement (the upload's puid) and says the restriction was
    lifted on appeal, and when. None for any other decision. Raises ValidationError when its
    text would hold personal data."""
    if decision.source != "appeal" or decision.decision is not Outcome.ALLOW:
        return None
    if APPEAL_OVERTURNED not in decision.reasons:
        return None
    lifted = decision.occurred_at.astimezone(UTC)
    return StatementLifted(
        puid=lifted_puid(decision.event_id),
        supersedes=puid_of(decision.event_id),
        event_id=decision.event_id,
        tenant=decision.tenant,
        decision_id=decision.decision_id,
        lifted_at=lifted,
        explanation=(
            "The decision to restrict this image was appealed. A reviewer of the moderation team examined "
            f"the image and overturned the decision: the restriction was lifted on {lifted:%Y-%m-%d} (UTC)."
        ),
    )


def statement_for(decision: ModerationDecision, rules: StatementRules) -> StatementIssued | None:
    """The statement of ``decision`` when it restricts the image (a block); None otherwise.
    Raises ValueError when the rules' texts would put personal data in it."""
    if decision.decision is not Outcome.BLOCK:
        return None
    path = decision_path(decision)
    reporting = _reporting(decision, path, rules)
    detection, automation = AUTOMATION[path]
    illegal = reporting.ground == "illegal"
    statement = Statement(
        decision_visibility=[rules.visibility],
        decision_ground="DECISION_GROUND_ILLEGAL_CONTENT" if illegal else "DECISION_GROUND_INCOMPATIBLE_CONTENT",
        illegal_content_legal_ground=reporting.law,
        illegal_content_explanation=reporting.explanation if illegal else None,
        incompatible_content_ground=reporting.terms,
        incompatible_content_explanation=None if illegal else reporting.explanation,
        content_type=["CONTENT_TYPE_IMAGE"],
        category=reporting.category,
        category_specification=reporting.keywords,
        territorial_scope=rules.countries(),
        content_date=decision.uploaded_at.date(),
        application_date=decision.occurred_at.date(),
        decision_facts=facts(decision, path),
        source_type="SOURCE_VOLUNTARY",
        automated_detection=detection,
        automated_decision=automation,
        puid=puid_of(decision.event_id),
    )
    return StatementIssued(
        puid=statement.puid,
        event_id=decision.event_id,
        tenant=decision.tenant,
        decision_id=decision.decision_id,
        path=path,
        statement=statement.body(),
    )


def _reporting(decision: ModerationDecision, path: DecisionPath, rules: StatementRules) -> Reporting:
    if path == "bank_match" and decision.bank_match is not None:
        return rules.for_bank(decision.bank_match.bank)
    return rules.for_labels(decision.labels_for())


def facts(decision: ModerationDecision, path: DecisionPath) -> str:
    """What was decided and on what evidence, in words: labels, scores against thresholds,
    model versions, the bank entry, the reviewer's role. Never a name, a key or the image."""
    said: list[str] = []
    model = decision.model
    if model is not None and decision.triggered:
        components = ", ".join(f"{name} version {version}" for name, version in sorted(model.components.items()))
        scored = "; ".join(
            f"{t.label} scored {t.score:.2f}, at or above its {t.level} threshold {t.threshold:.2f}"
            for t in decision.triggered
        )
        said.append(
            f"The image classifier (ensemble {model.name}{': ' + components if components else ''}) "
            f"flagged the image: {scored}."
        )
    if decision.bank_match is not None:
        match = decision.bank_match
        said.append(
            f"The image matched entry {match.entry_id} of the hash bank {match.bank} "
            f"({match.signal}, distance {match.distance})."
        )
    elif path == "model_then_human" and HASH_MATCH in decision.reasons:
        said.append("The image matched an entry of a hash bank that sends matches to review.")
    if decision.source == "retroactive":
        said.append("The entry was added to the bank after the upload; this decision supersedes the first one.")
    if path in ("model", "bank_match"):
        said.append("The image was removed automatically, with no person involved in the decision.")
    else:
        why = "" if path == "model_then_human" else "It had been drawn at random for quality review. "
        labels = ", ".join(decision.labels) or "no label named"
        said.append(f"{why}A reviewer of the moderation team examined the image and removed it ({labels}).")
    said.append(f"Policy {decision.policy_id} version {decision.policy_version} applied.")
    text = " ".join(said)
    return text if len(text) <= FACTS_LIMIT else text[: FACTS_LIMIT - 1] + "…"
