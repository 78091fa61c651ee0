"""Decisions of every path that restricts an image, and a tenant's statements section, for tests."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from modstream.core.events import (
    HASH_MATCH,
    THRESHOLD,
    BankAction,
    BankMatch,
    DecisionPath,
    ModelRef,
    ModerationDecision,
    Outcome,
    Trigger,
)
from modstream.policy.engine import Policy

UPLOADED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
MODEL = ModelRef(
    name="moderation",
    version="image_safety:1+nsfwjs:1+taxonomy:ab12",
    components={"image_safety": "1", "nsfwjs": "1", "taxonomy": "ab12"},
)

STATEMENTS: dict[str, Any] = {
    "territorial_scope": "EEA",
    "labels": {
        "sexual.explicit": {
            "category": "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
            "keywords": ["KEYWORD_ADULT_SEXUAL_MATERIAL"],
            "terms": "Terms of Service, section 4.2: no sexual content",
            "explanation": "Sexual content is not allowed on this service.",
        },
        "violence.gore": {
            "category": "STATEMENT_CATEGORY_VIOLENCE",
            "terms": "Terms of Service, section 4.3: no graphic violence",
            "explanation": "Graphic violence is not allowed on this service.",
        },
    },
    "banks": {
        "csam-known": {
            "category": "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
            "keywords": ["KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL"],
            "ground": "illegal",
            "law": "Directive 2011/93/EU, Article 5",
            "explanation": "The image matches known child sexual abuse material.",
        }
    },
    "other": {
        "category": "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
        "terms": "Terms of Service, section 4",
        "explanation": "The image breaks the content rules of this service.",
    },
}


def submitting_section(policies: Path, endpoint: str, token_file: Path) -> dict[str, Any]:
    """A tenant's statements section under ``policies`` (a copy of config/policies): every label
    of its default policy mapped (unknown ones under ``other``), submitting to ``endpoint``."""
    names = yaml.safe_load((policies / "default.yaml").read_text())["labels"]
    return STATEMENTS | {
        "labels": {name: STATEMENTS["labels"].get(name, STATEMENTS["other"]) for name in names},
        "submit": {"endpoint": endpoint, "token_file": str(token_file)},
    }


def policy(statements: dict[str, Any] | None = None) -> Policy:
    return Policy.model_validate(
        {
            "id": "tenant:acme",
            "version": "7",
            "labels": {
                "sexual.explicit": {"review_at": 0.4, "block_at": 0.85, "queue": "sexual"},
                "violence.gore": {"review_at": 0.35, "block_at": 0.8, "queue": "gore"},
            },
            "statements": STATEMENTS if statements is None else statements,
        }
    )


def decision(path: DecisionPath, **changes: Any) -> ModerationDecision:
    """A block taken on ``path``, as the worker, a bank or the dashboard publishes it."""
    fields: dict[str, Any] = {
        "event_id": f"evt-{path}",
        "tenant": "acme",
        "bucket": "uploads",
        "key": "acme/photo.jpg",
        "decision": Outcome.BLOCK,
        "policy_id": "tenant:acme",
        "policy_version": "7",
        "uploaded_at": UPLOADED,
        "occurred_at": UPLOADED + timedelta(seconds=2),
        "latency_ms": 120.0,
        "model": MODEL,
        "scores": {"sexual.explicit": 0.97, "violence.gore": 0.02},
    }
    gore = Trigger(label="violence.gore", score=0.55, threshold=0.35, level="review")
    match = BankMatch(bank="csam-known", entry_id="ncmec-0042", signal="pdq", distance=12, action=BankAction.BLOCK)
    fields |= {
        "model": {
            "triggered": [Trigger(label="sexual.explicit", score=0.97, threshold=0.85, level="block")],
            "reasons": [THRESHOLD],
        },
        "bank_match": {"bank_match": match, "reasons": [HASH_MATCH], "model": None, "scores": {}},
        "model_then_human": {
            "source": "human",
            "triggered": [gore],
            "reasons": ["human_review", THRESHOLD],
            "labels": ["violence.gore"],
            "reviewer": "lena",
            "occurred_at": UPLOADED + timedelta(hours=3),
        },
        "human": {
            "source": "human",
            "reasons": ["human_review", "audit_sample"],
            "labels": ["sexual.explicit"],
            "reviewer": "lena",
            "occurred_at": UPLOADED + timedelta(days=1),
        },
    }[path]
    return ModerationDecision(**fields | changes)


PATHS: tuple[DecisionPath, ...] = ("model", "bank_match", "model_then_human", "human")
