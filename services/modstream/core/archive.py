"""The decision archive's layout: its tables and their Arrow schemas.

The archiver writes it and every reader of evidence reads it, so the contract lives here,
like the events. Each table is an Iceberg table (``core.lake``): partitioned by the day of
``occurred_at``, one row per record (a replay never stores one twice).
"""

from base64 import b64decode
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

from modstream.core.events import ModerationDecision, ReviewVerdict, ShadowScore

SCORES = pa.map_(pa.string(), pa.float64())
LABELS = pa.list_(pa.string())
VERSIONS = pa.map_(pa.string(), pa.string())
THRESHOLDS = pa.map_(pa.string(), pa.struct([("review_at", pa.float64()), ("block_at", pa.float64())]))
TRIGGERS = pa.list_(
    pa.struct([("label", pa.string()), ("score", pa.float64()), ("threshold", pa.float64()), ("level", pa.string())])
)
TIME = pa.timestamp("us", tz="UTC")
TEXT_LINES = pa.list_(pa.struct([("text", pa.string()), ("confidence", pa.float64()), ("box", pa.list_(pa.float64()))]))
TEXT_MATCHES = pa.list_(
    pa.struct(
        [
            ("label", pa.string()),
            ("rule", pa.string()),
            ("line", pa.int32()),
            ("start", pa.int32()),
            ("end", pa.int32()),
            ("confidence", pa.float64()),
        ]
    )
)
# Where a block's occlusion maps are kept (events.SaliencyRef): the key alone cannot be found
# again from the row, since it hashes the masking method too.
SALIENCY = pa.struct(
    [
        ("bucket", pa.string()),
        ("key", pa.string()),
        ("method", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("seconds", pa.float64()),
    ]
)

Column = tuple[str, pa.DataType, Callable[[Any], Any]]


def _field(name: str) -> Callable[[Any], Any]:
    return lambda record: getattr(record, name)


def _part(attribute: str, part: str) -> Callable[[Any], Any]:
    """A field of a part of the record (``model.version``), none when the part is absent."""

    def read(record: Any) -> Any:
        value = getattr(record, attribute)
        return None if value is None else getattr(value, part)

    return read


def _columns(*names_types: tuple[str, pa.DataType]) -> list[Column]:
    return [(name, kind, _field(name)) for name, kind in names_types]


@dataclass(frozen=True)
class Table:
    """One record type as an archive table: its folder, its id column and its columns."""

    name: str
    record: type[BaseModel] | None  # what its topic carries; None for a table of leftovers
    id_column: str
    columns: Sequence[Column]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(name, kind) for name, kind, _ in self.columns])

    def rows(self, records: Sequence[Any]) -> pa.Table:
        """Records of this table's type as an Arrow table of its schema."""
        return pa.table(
            {name: pa.array([read(r) for r in records], type=kind) for name, kind, read in self.columns},
            schema=self.schema,
        )


_IMAGE = _columns(
    ("event_id", pa.string()),
    ("tenant", pa.string()),
    ("bucket", pa.string()),
    ("key", pa.string()),
    ("occurred_at", TIME),
)

# Hashes, for matching archived uploads against entries added later.
_HASHES: list[Column] = [
    ("sha256", pa.string(), _part("hashes", "sha256")),
    ("md5", pa.string(), _part("hashes", "md5")),
    ("pdq", pa.string(), lambda r: None if r.hashes is None or r.hashes.pdq is None else r.hashes.pdq.hex),
    ("pdq_quality", pa.int32(), lambda r: None if r.hashes is None or r.hashes.pdq is None else r.hashes.pdq.quality),
    # Further bank signal types' values, by type name (bank/signals).
    ("signals", VERSIONS, lambda r: None if r.hashes is None or not r.hashes.signals else dict(r.hashes.signals)),
]
# The bank entry that decided (decisions) or that the reviewed item matched (verdicts).
_BANK_MATCH: list[Column] = [
    ("bank", pa.string(), _part("bank_match", "bank")),
    ("bank_entry_id", pa.string(), _part("bank_match", "entry_id")),
    ("bank_signal", pa.string(), _part("bank_match", "signal")),
    ("bank_distance", pa.int32(), _part("bank_match", "distance")),
]

DECISIONS = Table(
    name="decisions",
    record=ModerationDecision,
    id_column="decision_id",
    columns=[
        *_columns(("decision_id", pa.string())),
        *_IMAGE,
        *_columns(("uploaded_at", TIME), ("source", pa.string()), ("subject", pa.string())),
        ("decision", pa.string(), lambda d: d.decision.value),
        ("scores", SCORES, _field("scores")),
        ("triggered", TRIGGERS, lambda d: [t.model_dump() for t in d.triggered]),
        ("thresholds", THRESHOLDS, lambda d: {label: t.model_dump() for label, t in d.thresholds.items()}),
        ("reasons", LABELS, _field("reasons")),
        ("error_reason", pa.string(), lambda d: None if d.error is None else d.error.reason.value),
        ("model_name", pa.string(), _part("model", "name")),
        ("model_version", pa.string(), _part("model", "version")),
        ("model_components", VERSIONS, lambda d: None if d.model is None else d.model.components),
        ("embedding_model", pa.string(), lambda d: None if d.embedding is None else d.embedding.model),
        ("embedding", pa.binary(), lambda d: None if d.embedding is None else b64decode(d.embedding.values_base64)),
        *_HASHES,
        *_BANK_MATCH,
        # What OCR read (none when it did not run) and where text rules and banks matched.
        ("text_regions", pa.int32(), _part("text", "regions")),
        ("text_lines", TEXT_LINES, lambda d: None if d.text is None else [line.model_dump() for line in d.text.lines]),
        ("text_matches", TEXT_MATCHES, lambda d: [m.model_dump() for m in d.text_matches]),
        ("saliency", SALIENCY, lambda d: None if d.saliency is None else d.saliency.model_dump()),
        *_columns(
            ("policy_id", pa.string()),
            ("policy_version", pa.string()),
            ("audit_sample", pa.bool_()),
            ("audit_rate", pa.float64()),
            ("review_queue", pa.string()),
            ("reviewer", pa.string()),
            ("review_seconds", pa.float64()),
            ("latency_ms", pa.float64()),
        ),
    ],
)

VERDICTS = Table(
    name="verdicts",
    record=ReviewVerdict,
    id_column="verdict_id",
    columns=[
        *_columns(("verdict_id", pa.string())),
        *_IMAGE,
        *_columns(
            ("job_id", pa.string()),
            ("job_kind", pa.string()),
            ("queue", pa.string()),
            ("verdict", pa.string()),
            ("labels", LABELS),
            ("note", pa.string()),
            ("reviewer", pa.string()),
            ("review_seconds", pa.float64()),
            ("automatic_decision_id", pa.string()),
            ("human_decision_id", pa.string()),
            ("scores", SCORES),
        ),
        ("model_name", pa.string(), _part("model", "name")),
        ("model_version", pa.string(), _part("model", "version")),
        *_BANK_MATCH,
        *_columns(("policy_id", pa.string()), ("policy_version", pa.string())),
    ],
)

SHADOW = Table(
    name="shadow",
    record=ShadowScore,
    id_column="shadow_id",
    columns=[
        *_columns(("shadow_id", pa.string())),
        *_IMAGE,
        ("serving_model_name", pa.string(), _part("serving_model", "name")),
        ("serving_model_version", pa.string(), _part("serving_model", "version")),
        ("serving_scores", SCORES, _field("serving_scores")),
        ("serving_decision", pa.string(), lambda s: s.serving_decision.value),
        ("shadow_model_name", pa.string(), _part("shadow_model", "name")),
        ("shadow_model_version", pa.string(), _part("shadow_model", "version")),
        ("shadow_scores", SCORES, _field("shadow_scores")),
        ("shadow_decision", pa.string(), lambda s: s.shadow_decision.value),
        *_columns(("policy_id", pa.string()), ("policy_version", pa.string())),
    ],
)


@dataclass(frozen=True)
class Unreadable:
    """A record on an archived topic that is none of the archived types: kept, never dropped."""

    topic: str
    partition: int
    offset: int
    occurred_at: datetime
    error: str
    payload: bytes


UNREADABLE = Table(
    name="unreadable",
    record=None,
    id_column="record_id",
    columns=[
        ("record_id", pa.string(), lambda u: f"{u.topic}/{u.partition}/{u.offset}"),
        *_columns(
            ("topic", pa.string()),
            ("partition", pa.int32()),
            ("offset", pa.int64()),
            ("occurred_at", TIME),
            ("error", pa.string()),
            ("payload", pa.binary()),
        ),
    ],
)

TABLES = {table.name: table for table in (DECISIONS, VERDICTS, SHADOW, UNREADABLE)}
