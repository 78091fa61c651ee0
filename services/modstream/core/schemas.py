"""JSON Schema files for the wire contract, one per topic, generated from the event models."""

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from modstream.core.events import (
    AppealLodged,
    AppealOutcome,
    Bank,
    BankEntry,
    DeadLetter,
    ImageUploaded,
    ModerationDecision,
    ReviewRequest,
    ReviewVerdict,
    ShadowScore,
    StatementIssued,
    StatementLifted,
)
from modstream.core.settings import PROJECT_ROOT

SCHEMA_DIR = PROJECT_ROOT / "schemas"
# File name (the record type) -> the model on that record type's topic, and the side
# the schema describes: what we accept from producers, or what we always write.
RECORDS: dict[str, tuple[type[BaseModel], Literal["validation", "serialization"]]] = {
    "image.uploaded": (ImageUploaded, "validation"),
    "moderation.decision": (ModerationDecision, "serialization"),
    "review.request": (ReviewRequest, "serialization"),
    "review.verdict": (ReviewVerdict, "serialization"),
    "dead-letter": (DeadLetter, "serialization"),
    "model.shadow": (ShadowScore, "serialization"),
    "bank.bank": (Bank, "serialization"),
    "bank.entry": (BankEntry, "serialization"),
    "moderation.statement": (StatementIssued, "serialization"),
    "moderation.statement-lifted": (StatementLifted, "serialization"),
    "moderation.appeal": (AppealLodged, "validation"),
    "moderation.appeal-outcome": (AppealOutcome, "serialization"),
}


def render(name: str) -> str:
    model, mode = RECORDS[name]
    schema = model.model_json_schema(mode=mode)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in RECORDS:
        path = directory / f"{name}.schema.json"
        path.write_text(render(name))
        written.append(path)
    return written


def stale_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Record types whose checked-in schema file differs from the model (or is missing)."""
    stale = []
    for name in RECORDS:
        path = directory / f"{name}.schema.json"
        if not path.is_file() or path.read_text() != render(name):
            stale.append(name)
    return stale
