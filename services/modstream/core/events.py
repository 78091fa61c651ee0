"""The wire contract: one pydantic model per record type that travels on Kafka.

Every record carries its own id, type, schema version and timestamp, so a consumer
can deduplicate, route and upgrade without looking at the topic it came from.
JSON Schemas in ``schemas/`` are generated from these models (``modstream schemas``).
"""

from collections.abc import Collection
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import uuid4

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from modstream.core.bank_action import BankAction as BankAction  # its own module: the CLI offers it
from modstream.core.dsa import Puid, personal_data

SCHEMA_VERSION: Literal[1] = 1

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
Tenant = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
QUEUE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
QueueName = Annotated[str, StringConstraints(pattern=QUEUE_NAME)]  # a review queue
# S3 bucket naming rules (lowercase, 3-63 chars) and a key that is a plain relative path.
BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
# A platform's pseudonymous id of a person (never a name or an address): who uploaded, who appeals.
Subject = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]


class NotAnId(ValueError):
    """An event id or a subject that no upload can have: refused before anything is looked up or sent."""


def check_ids(event_ids: Collection[str] = (), subject: str | None = None) -> None:
    """Raise NotAnId, naming the first value that is not an event id (or a subject)."""
    given = [(e, EventId, "an event id") for e in event_ids]
    if subject is not None:
        given.append((subject, Subject, "a subject"))
    for value, kind, name in given:
        try:
            TypeAdapter(kind).validate_python(value)
        except ValidationError as exc:
            raise NotAnId(f"{value!r} is not {name}: 1-128 letters, digits and _.:- only") from exc


def _plain_relative_path(key: str) -> str:
    # Keys end up in URLs and file paths: refuse anything that could climb out.
    if key.startswith("/") or ".." in key.split("/"):
        raise ValueError("object key must be a relative path without '..' segments")
    return key


ObjectKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\x00-\x1f\\]+$"),
    AfterValidator(_plain_relative_path),
]


def new_id() -> str:
    return uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Record(BaseModel):
    # Schemas describe what is on the wire, where every field is always present.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    occurred_at: datetime = Field(default_factory=utcnow)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class ImageUploaded(Record):
    """A platform stored an image and asks for a decision on it.

    It comes from outside, so its identity fields have no defaults: an event
    without an id could never be deduplicated. Producers build one with ``new``.
    Fields this worker does not know are accepted and dropped (forward compatibility:
    a newer producer, or a platform's own ``uploader_id``, must not dead-letter the
    upload); a known field that is missing or invalid still refuses it.
    """

    # Unknown fields change nothing the worker does, so none is kept: a decision never
    # carries unvalidated producer data. The schema says so (additionalProperties: true).
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": True})

    event_type: Literal["image.uploaded"]
    schema_version: Literal[1]
    event_id: EventId
    occurred_at: datetime
    tenant: Tenant
    bucket: BucketName
    key: ObjectKey
    content_type: str | None = None
    size_bytes: int | None = Field(default=None, ge=0)
    metadata: dict[str, str] = Field(default_factory=dict)
    subject: Subject | None = Field(
        default=None, description="the platform's pseudonymous id of the uploader (`modstream erase --subject`)"
    )

    @classmethod
    def new(cls, *, tenant: str, bucket: str, key: str, **optional: Any) -> "ImageUploaded":
        return cls(
            event_type="image.uploaded",
            schema_version=SCHEMA_VERSION,
            event_id=new_id(),
            occurred_at=utcnow(),
            tenant=tenant,
            bucket=bucket,
            key=key,
            **optional,
        )


class Outcome(StrEnum):
    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"
    ERROR = "error"


class ErrorReason(StrEnum):
    """Why an image could not be scored. These never succeed on retry."""

    OBJECT_MISSING = "object_missing"
    EMPTY_FILE = "empty_file"
    TOO_LARGE = "too_large"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    CORRUPT_IMAGE = "corrupt_image"
    TOO_MANY_PIXELS = "too_many_pixels"
    DECOMPRESSION_BOMB = "decompression_bomb"
    REJECTED_BY_MODEL = "rejected_by_model"
    FETCH_FAILED = "fetch_failed"
    INTERNAL_ERROR = "internal_error"


class Part(BaseModel):
    """A value inside a record."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(Part):
    """A label whose score reached a threshold."""

    label: str
    score: float
    threshold: float
    level: Literal["review", "block"]


class Thresholds(Part):
    """A label's thresholds as the policy applied them to one decision."""

    review_at: float
    block_at: float


class ModelRef(Part):
    """The model that scored: for an ensemble, its name, every component's version in one
    string (``image_safety:1+nsfwjs:2+…+taxonomy:<hash>``) and the same as a mapping."""

    name: str
    version: str
    components: dict[str, str] = Field(
        default_factory=dict, description="an ensemble's components (and taxonomy) -> version"
    )

    def __hash__(self) -> int:
        # The version string already names every component: equal versions, equal models.
        return hash((self.name, self.version))


class Embedding(Part):
    """An image embedding from the ensemble's feature extractor, for learning and drift."""

    model: str = Field(description="the component that made it, as name:version")
    dtype: Literal["float16"] = "float16"
    dims: int = Field(ge=1)
    values_base64: str = Field(description="the vector's little-endian bytes, base64")


PdqHex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Md5Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
BankName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]


class PdqHash(Part):
    """Meta's PDQ perceptual hash of the decoded image (256 bits) and its quality (0-100;
    under 50 the image has too little structure for the hash to mean much)."""

    hex: PdqHex
    quality: int = Field(ge=0, le=100)


# A hash bank signal type's name (bank/signals registers the types): pdq, sha256, md5, or a
# type added since, whose values records keep in their ``signals`` mapping.
SignalName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
SignalValue = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
NAMED_SIGNALS = ("pdq", "sha256", "md5")  # the types with fields of their own


def _no_signals(value: dict[str, str]) -> bool:
    # Left out of the JSON when empty: records without further signal types stay byte for
    # byte what they were, and readers that predate the field still take them.
    return not value


def _other_signals(signals: dict[str, str]) -> dict[str, str]:
    named = sorted(set(signals) & set(NAMED_SIGNALS))
    if named:
        raise ValueError(f"{', '.join(named)} have fields of their own, not a place in signals")
    return signals


OtherSignals = Annotated[dict[SignalName, SignalValue], AfterValidator(_other_signals)]


class ImageHashes(Part):
    """An image's signals for hash banks: exact hashes of its bytes and its PDQ hash."""

    sha256: Sha256Hex
    md5: Md5Hex
    pdq: PdqHash | None = Field(default=None, description="none when the image could not be decoded")
    signals: OtherSignals = Field(
        default_factory=dict, exclude_if=_no_signals, description="further signal types' values, by type name"
    )

    def entry_fields(self) -> dict[str, Any]:
        """These hashes as the fields of a ``BankEntry``."""
        pdq = self.pdq
        return {
            "sha256": self.sha256,
            "md5": self.md5,
            "pdq": None if pdq is None else pdq.hex,
            "pdq_quality": None if pdq is None else pdq.quality,
            "signals": dict(self.signals),
        }


class BankMatch(Part):
    """The bank entry an image matched, and how closely."""

    bank: BankName
    entry_id: str
    signal: SignalName
    distance: int = Field(ge=0, description="the signal type's distance (PDQ: Hamming); 0 for an exact hash")
    action: BankAction


# What OCR found in an image, bounded so a decision stays small: the ocr model keeps the first
# lines in reading order and cuts each at this many characters.
TEXT_MAX_LINES = 32
TEXT_MAX_CHARS = 200
Box = tuple[float, float, float, float]


class TextLine(Part):
    """One line of text read in the image."""

    text: str = Field(max_length=TEXT_MAX_CHARS)
    confidence: float = Field(ge=0.0, le=1.0, description="the recogniser's mean per-character confidence")
    box: Box = Field(description="x0, y0, x1, y1 as fractions of the image's width and height (0-1)")


class TextReading(Part):
    """The text OCR read in an image: its lines in reading order (top to bottom, left to right)."""

    regions: int = Field(ge=0, description="text regions detected; only these were read")
    lines: list[TextLine] = Field(default_factory=list, max_length=TEXT_MAX_LINES)
    truncated: bool = Field(default=False, description="more lines were read than are kept here")

    def full_text(self) -> str:
        return "\n".join(line.text for line in self.lines)


class TextMatch(Part):
    """Where a text rule or a text bank matched: a span of one recognised line."""

    label: str = Field(description="the text label it is evidence for (e.g. text.scam), or the bank's name")
    rule: str = Field(description="what matched: a term, a pattern, a detector (phone, url:…) or bank:<name>")
    line: int = Field(ge=0, description="the line's index in the reading")
    start: int = Field(ge=0, description="the span's first character in that line")
    end: int = Field(ge=0, description="one past its last character")
    confidence: float = Field(ge=0.0, le=1.0, description="the line's recognition confidence")

    @property
    def banked(self) -> bool:
        """A text bank's phrase matched (its label is the bank's name, not a label to review for)."""
        return self.rule.startswith("bank:")


class SaliencyRef(Part):
    """Where a decision's occlusion maps are kept (made by the models that decided, for the
    blocks of a policy that asks for them: ``saliency_on_block``)."""

    bucket: BucketName
    key: ObjectKey
    method: str = Field(description="how the copies were occluded, e.g. occlusion-7x7-48px")
    labels: list[str] = Field(description="the labels with a map (text labels have none)")
    seconds: float = Field(ge=0, description="what making them took")


class DecisionError(Part):
    reason: ErrorReason
    message: str


class ImageRecord(Record):
    """A record about one uploaded image, which it names by the upload's event id."""

    event_id: EventId
    tenant: Tenant
    bucket: BucketName
    key: ObjectKey


class ModerationDecision(ImageRecord):
    """What to do with one uploaded image, and why."""

    event_type: Literal["moderation.decision"] = "moderation.decision"
    decision_id: str = Field(default_factory=new_id)
    decision: Outcome
    scores: dict[str, float] = Field(default_factory=dict)
    triggered: list[Trigger] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    error: DecisionError | None = None
    model: ModelRef | None = None
    embedding: Embedding | None = None
    hashes: ImageHashes | None = Field(default=None, description="the image's hashes, for banks and re-matching")
    bank_match: BankMatch | None = Field(default=None, description="the bank entry that decided, if one did")
    text: TextReading | None = Field(default=None, description="the text OCR read in the image; none when not read")
    text_matches: list[TextMatch] = Field(default_factory=list, description="text rules and text banks that matched")
    saliency: SaliencyRef | None = Field(
        default=None, description="the occlusion maps kept for this decision, when its policy asks for them"
    )
    policy_id: str
    policy_version: str
    source: Literal["automatic", "human", "retroactive", "appeal"] = Field(
        default="automatic",
        description="the worker's decision, a reviewer's, a bank entry's added later, or an appeal's that "
        "overturned the one before (each supersedes the first)",
    )
    review_queue: str | None = Field(default=None, description="the human review queue it was sent to, if any")
    reviewer: str | None = Field(default=None, description="who decided, for human decisions")
    labels: list[str] = Field(default_factory=list, description="the labels a reviewer named, for human decisions")
    review_seconds: float | None = Field(default=None, ge=0, description="time the reviewer spent on it")
    # What the quality loop needs to weigh reviewers' verdicts against the population they
    # were drawn from, and to re-run the policy over archived scores.
    audit_sample: bool = Field(default=False, description="also sent to review as an audit sample")
    audit_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="the audit sample rate in force")
    thresholds: dict[str, Thresholds] = Field(default_factory=dict, description="the policy's thresholds, as applied")
    uploaded_at: datetime
    latency_ms: float = Field(ge=0, description="from receiving the event (or the review) to the decision")
    subject: Subject | None = Field(
        default=None, description="the uploader's pseudonymous id, as the upload named it (automatic decisions)"
    )

    def labels_for(self) -> list[str]:
        """The labels the decision was taken for, foremost first: a person's (what they removed it
        for), then those that triggered, most certain first (the policy sorts them so)."""
        return list(dict.fromkeys([*self.labels, *(t.label for t in self.triggered)]))


class ReviewRequest(ImageRecord):
    """An automatic decision that a person must look at: uncertain, or an audit sample."""

    event_type: Literal["review.request"] = "review.request"
    request_id: str = Field(default_factory=new_id)
    decision_id: str
    decision: Outcome
    queue: str
    scores: dict[str, float]
    triggered: list[Trigger]
    reasons: list[str]
    model: ModelRef | None = Field(description="none when a bank entry decided without the classifier")
    hashes: ImageHashes | None = None
    bank_match: BankMatch | None = None
    text: TextReading | None = None
    text_matches: list[TextMatch] = Field(default_factory=list)
    policy_id: str
    policy_version: str
    thresholds: dict[str, Thresholds] = Field(default_factory=dict, description="the policy's thresholds, as applied")
    double_review_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="the policy's share of review jobs also given to a second reviewer"
    )
    bank_on_remove: dict[str, BankName] = Field(
        default_factory=dict, description="the policy's label -> hash bank: a remove naming the label banks the image"
    )
    uploaded_at: datetime

    @classmethod
    def of(
        cls, decision: ModerationDecision, double_review_rate: float = 0.0, bank_on_remove: dict[str, str] | None = None
    ) -> "ReviewRequest":
        """The request for a person to look at ``decision`` in its review queue; the rate and
        the bank map are the deciding policy's."""
        if decision.review_queue is None:
            raise ValueError(f"decision {decision.decision_id} names no review queue")
        return cls(
            **decision.model_dump(
                include={
                    "decision_id",
                    "event_id",
                    "tenant",
                    "bucket",
                    "key",
                    "decision",
                    "scores",
                    "triggered",
                    "reasons",
                    "model",
                    "hashes",
                    "bank_match",
                    "text",
                    "text_matches",
                    "policy_id",
                    "policy_version",
                    "thresholds",
                    "uploaded_at",
                }
            ),
            queue=decision.review_queue,
            double_review_rate=double_review_rate,
            bank_on_remove=bank_on_remove or {},
        )


JobKind = Literal["threshold_review", "audit_sample", "second_review", "labelling", "appeal"]
# The reasons a decision gives when automated means flagged the image: a label's score
# reaching its threshold, or a hash bank's entry matching.
THRESHOLD, HASH_MATCH = "threshold", "hash_match"
DECIDING_JOB_KINDS = ("threshold_review", "audit_sample")
"""The kinds whose verdict publishes the final decision; a blind second review and a labelling
job (an archived image a team asked reviewers to label) publish none."""
SECOND_REVIEW = "second_review"
"""The kind of a blind second look at a decided item: it measures reviewers, never the item."""


class ReviewVerdict(ImageRecord):
    """What a reviewer decided, with what they saw: for quality measurement and retraining.

    ``labels`` is the reviewer's whole label set for the image (empty: none applies), the
    per-label truth the quality loop measures against. A ``second_review`` verdict was given
    blind to the first and published no decision; neither did a ``labelling`` one (an archived
    image chosen for its likeness to a new label's examples).
    """

    event_type: Literal["review.verdict"] = "review.verdict"
    verdict_id: str = Field(default_factory=new_id)
    job_id: str
    job_kind: JobKind
    queue: str
    verdict: Literal["approve", "remove"]
    labels: list[str]
    note: str | None = None
    reviewer: str
    review_seconds: float = Field(ge=0)
    automatic_decision_id: str
    human_decision_id: str | None = Field(description="the final decision it published; none for a second review")
    scores: dict[str, float]
    model: ModelRef | None
    hashes: ImageHashes | None = None
    bank_match: BankMatch | None = Field(
        default=None, description="the bank entry the item matched: a remove confirms it, an approve disputes it"
    )
    policy_id: str
    policy_version: str


class ShadowScore(ImageRecord):
    """A candidate model's scores for an image, beside the serving model's.

    Written while a shadow runs; it changes no decision. ``shadow_decision`` is what
    the same policy would have decided from the candidate's scores.
    """

    event_type: Literal["model.shadow"] = "model.shadow"
    shadow_id: str = Field(default_factory=new_id)
    serving_model: ModelRef
    serving_scores: dict[str, float]
    serving_decision: Outcome
    shadow_model: ModelRef
    shadow_scores: dict[str, float]
    shadow_decision: Outcome
    policy_id: str
    policy_version: str


class Bank(Record):
    """A hash bank's settings, on the compacted banks topic under the key ``bank/<name>``
    (a null value there deletes the bank and every entry in it)."""

    event_type: Literal["bank.bank"] = "bank.bank"
    name: BankName
    action: BankAction
    review_queue: str | None = Field(default=None, description="where a review bank's matches go")
    distance: int = Field(default=31, ge=0, le=128, description="the largest PDQ distance that matches")
    min_quality: int = Field(default=50, ge=0, le=100, description="PDQ hashes of lower quality are not matched")
    enabled: bool = True
    tenants: list[Tenant] | None = Field(default=None, description="the tenants it applies to; none: every tenant")
    description: str = ""
    changed_by: str

    @model_validator(mode="after")
    def _queue_for_review(self) -> "Bank":
        if (self.action is BankAction.REVIEW) != (self.review_queue is not None):
            raise ValueError("a review bank names its review_queue, and only a review bank does")
        return self


class BankEntry(Record):
    """Hashes of one known image in a bank, on the banks topic under ``entry/<bank>/<entry_id>``
    (a null value there removes it)."""

    event_type: Literal["bank.entry"] = "bank.entry"
    bank: BankName
    # An id is part of the entry's topic key (entry/<bank>/<id>): no slashes.
    entry_id: EventId = Field(default_factory=new_id)
    pdq: PdqHex | None = None
    pdq_quality: int | None = Field(default=None, ge=0, le=100)
    sha256: Sha256Hex | None = None
    md5: Md5Hex | None = None
    signals: OtherSignals = Field(
        default_factory=dict, exclude_if=_no_signals, description="further signal types' values, by type name"
    )
    added_by: str = Field(description="who added it: a reviewer, an operator, or an import")
    source_event_id: str | None = Field(default=None, description="the upload it was taken from, if any")
    note: str | None = None

    @model_validator(mode="after")
    def _some_signal(self) -> "BankEntry":
        if self.pdq is None and self.sha256 is None and self.md5 is None and not self.signals:
            raise ValueError("an entry needs at least one of pdq, sha256, md5 (or a value in signals)")
        return self


def bank_key(name: str) -> str:
    return f"bank/{name}"


def entry_key(bank: str, entry_id: str) -> str:
    return f"entry/{bank}/{entry_id}"


class DeadLetterReason(StrEnum):
    NOT_JSON = "not_json"
    SCHEMA_MISMATCH = "schema_mismatch"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    EVENT_TOO_LARGE = "event_too_large"
    BUCKET_NOT_ALLOWED = "bucket_not_allowed"
    UNKNOWN_TENANT = "unknown_tenant"
    STATEMENT_REFUSED = "statement_refused"  # by the Transparency Database, or by our own check


class DeadLetter(Record):
    """An event that can never succeed, kept with the reason.

    The payload is kept whole unless it is over the event size limit; then its first
    bytes, its size and its sha256 are kept, and the original stays at its offset.
    """

    event_type: Literal["dead-letter"] = "dead-letter"
    dead_letter_id: str = Field(default_factory=new_id)
    reason: DeadLetterReason
    detail: str
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    event_id: str | None = Field(default=None, description="when the payload had one")
    payload_base64: str
    payload_bytes: int = Field(ge=0, description="the size of the whole payload")
    payload_sha256: str
    payload_truncated: bool = False


# Decision sources where a person decided: a reviewer's verdict, or an appeal's.
BY_A_PERSON = ("human", "appeal")
# The reason an appeal's decision gives when a person overturned the restriction appealed.
APPEAL_OVERTURNED = "appeal_overturned"
DecisionPath = Literal["model", "bank_match", "model_then_human", "human"]


class StatementIssued(Record):
    """A statement of reasons for one restriction (DSA Art. 17), as the Transparency Database
    takes it (``statement``, checked by ``core.dsa.Statement``: it holds no personal data).
    The key on ``moderation.statements`` is its ``puid``."""

    event_type: Literal["moderation.statement"] = "moderation.statement"
    statement_id: str = Field(default_factory=new_id)
    puid: str = Field(description="the platform's unique id of the statement, from the event id")
    event_id: EventId
    tenant: Tenant
    decision_id: str = Field(description="the decision it states the reasons of")
    path: DecisionPath = Field(description="how the decision was taken: it sets automated_detection and _decision")
    statement: dict[str, Any] = Field(description="the body of POST /api/v1/statement")


class StatementLifted(Record):
    """An updated statement of reasons (DSA Art. 17): the restriction an earlier statement
    (``supersedes``) stated was lifted on appeal (Art. 20), and when. The platform sends it to
    the person the restriction concerned; it is never sent to the Transparency Database, which
    has no call to update or withdraw a statement. On ``moderation.statements``, keyed by its own
    ``puid``; its text holds no personal data (``core.dsa.personal_data``, as a statement's)."""

    event_type: Literal["moderation.statement-lifted"] = "moderation.statement-lifted"
    statement_id: str = Field(default_factory=new_id)
    puid: Puid = Field(description="this update's own id: the superseded statement's puid and -lifted")
    supersedes: Puid = Field(description="the puid of the statement whose restriction was lifted")
    event_id: EventId
    tenant: Tenant
    decision_id: str = Field(description="the appeal's decision that lifted the restriction")
    lifted_at: datetime = Field(description="when the restriction was lifted")
    explanation: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] = Field(
        description="what happened, in words, for the person the restriction concerned"
    )

    @field_validator("explanation")
    @classmethod
    def _no_personal_data(cls, text: str) -> str:
        if found := personal_data(text):
            raise ValueError(f"explanation looks like it holds personal data ({', '.join(found)}): not published")
        return text

    @model_validator(mode="after")
    def _own_puid(self) -> "StatementLifted":
        if self.puid == self.supersedes:
            raise ValueError("an updated statement needs a puid of its own (the topic is keyed by puid)")
        return self


class AppealLodged(Record):
    """Someone asks for a restriction to be looked at again (DSA Art. 20), on ``moderation.appeals``."""

    event_type: Literal["moderation.appeal"] = "moderation.appeal"
    appeal_id: str = Field(default_factory=new_id)
    event_id: EventId = Field(description="the upload whose restriction is appealed")
    tenant: Tenant
    appellant: Literal["uploader", "reporter"]
    appellant_id: Subject = Field(
        description="the platform's pseudonymous id of who appeals (never a name or an address)"
    )
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]


class AppealRefusal(StrEnum):
    NO_RESTRICTION = "no_restriction"  # none on record: never restricted, lifted since, or unknown
    OUT_OF_TIME = "out_of_time"
    ALREADY_APPEALED = "already_appealed"


class AppealOutcome(Record):
    """What became of an appeal, on ``moderation.appeal-outcomes``: refused (with why), queued
    for a person (with its due date), then upheld or overturned."""

    event_type: Literal["moderation.appeal-outcome"] = "moderation.appeal-outcome"
    appeal_id: str
    event_id: EventId
    tenant: Tenant
    outcome: Literal["refused", "queued", "upheld", "overturned"]
    refusal: AppealRefusal | None = None
    detail: str = ""
    decision_id: str | None = Field(default=None, description="the decision appealed")
    new_decision_id: str | None = Field(default=None, description="the decision an overturn published")
    due_at: datetime | None = None
