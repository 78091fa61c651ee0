"""Retroactive matching: uploads of the last days matched against entries just added.

Every decision carries its image's hashes, so matching the past needs no image: the
recent decisions come from the decisions topic and, when there is one, the decision
archive. A match against a block bank publishes a new ``block`` decision for that upload,
one against a review bank a ``review`` decision and its review request — both with reasons
``[hash_match, retroactive]`` and ``source: retroactive``: a later decision that supersedes
the upload's first, as a reviewer's does. Allow banks are not applied to the past (known-good content needs no
second decision), nor is a bank applied to an upload a person has already decided, or one
whose decision was already as strict.
"""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modstream.bank.state import BANK_OUTCOMES, Banks
from modstream.bank.topic import put_bank, put_entry
from modstream.core.events import (
    BY_A_PERSON,
    HASH_MATCH,
    BankAction,
    BankEntry,
    ImageHashes,
    ModerationDecision,
    Outcome,
    PdqHash,
    ReviewRequest,
)
from modstream.core.kafka import kafka_producer, read_records
from modstream.core.settings import Settings

log = logging.getLogger("modstream.bank")
RETROACTIVE = "retroactive"
STRICTNESS = {Outcome.ALLOW: 0, Outcome.ERROR: 0, Outcome.REVIEW: 1, Outcome.BLOCK: 2}


@dataclass(frozen=True)
class Upload:
    """An upload as its latest decision left it."""

    event_id: str
    tenant: str
    bucket: str
    key: str
    hashes: ImageHashes
    uploaded_at: datetime
    decided_at: datetime
    decision: Outcome
    by_person: bool
    policy_id: str
    policy_version: str


@dataclass(frozen=True)
class RetroReport:
    scanned: int
    matched: int
    decisions: list[ModerationDecision]


def only_these(banks: Banks, entries: Sequence[BankEntry]) -> Banks:
    """Banks holding only ``entries`` (with their banks' settings): what is new to match."""
    fresh = Banks()
    for name in {e.bank for e in entries}:
        if name in banks.banks:
            fresh.apply(*put_bank(banks.banks[name]))
    for entry in entries:
        fresh.apply(*put_entry(entry))
    return fresh


def retro_decisions(fresh: Banks, uploads: Iterable[Upload]) -> tuple[int, list[ModerationDecision]]:
    """The new decisions for uploads that match ``fresh`` (the pure part); also how many were looked at."""
    scanned, decided = 0, []
    for upload in uploads:
        scanned += 1
        match = fresh.match(upload.hashes, upload.tenant)
        if match is None or upload.by_person or match.bank.action is BankAction.ALLOW:
            continue
        outcome = BANK_OUTCOMES[match.bank.action]
        if STRICTNESS[upload.decision] >= STRICTNESS[outcome]:
            continue
        decided.append(
            ModerationDecision(
                event_id=upload.event_id,
                tenant=upload.tenant,
                bucket=upload.bucket,
                key=upload.key,
                decision=outcome,
                source="retroactive",
                reasons=[HASH_MATCH, RETROACTIVE],
                review_queue=match.bank.review_queue,
                bank_match=match.ref(),
                hashes=upload.hashes,
                policy_id=upload.policy_id,
                policy_version=upload.policy_version,
                uploaded_at=upload.uploaded_at,
                latency_ms=0.0,
            )
        )
    return scanned, decided


def latest_uploads(decisions: Iterable[ModerationDecision], since: datetime) -> list[Upload]:
    """Each upload's latest decision from ``since`` on, for those that carry hashes."""
    latest: dict[str, ModerationDecision] = {}
    people: set[str] = set()
    for decision in decisions:
        if decision.source in BY_A_PERSON:
            people.add(decision.event_id)
        current = latest.get(decision.event_id)
        if current is None or decision.occurred_at >= current.occurred_at:
            latest[decision.event_id] = decision
    return [
        Upload(
            event_id=d.event_id,
            tenant=d.tenant,
            bucket=d.bucket,
            key=d.key,
            hashes=d.hashes,
            uploaded_at=d.uploaded_at,
            decided_at=d.occurred_at,
            decision=d.decision,
            by_person=d.event_id in people,
            policy_id=d.policy_id,
            policy_version=d.policy_version,
        )
        for d in latest.values()
        if d.hashes is not None and d.occurred_at >= since
    ]


def archived_uploads(settings: Settings, since: datetime) -> list[Upload]:
    """The same from the decision archive (days before the topic's retention), when there is one."""
    from modstream.core.evidence import hashed_uploads
    from modstream.core.lake import open_archive

    return [
        Upload(
            event_id=u.event_id,
            tenant=u.tenant,
            bucket=u.bucket,
            key=u.key,
            hashes=ImageHashes(
                sha256=u.sha256,
                md5=u.md5,
                pdq=None if u.pdq is None or u.pdq_quality is None else PdqHash(hex=u.pdq, quality=u.pdq_quality),
                signals=dict(u.signals or {}),
            ),
            uploaded_at=u.uploaded_at,
            decided_at=u.decided_at,
            decision=Outcome(u.decision),
            by_person=u.by_person,
            policy_id=u.policy_id,
            policy_version=u.policy_version,
        )
        for u in hashed_uploads(open_archive(settings, since=since.date()), since)
    ]


async def match_recent(
    settings: Settings, banks: Banks, entries: Sequence[BankEntry], days: float, *, archive: bool = True
) -> RetroReport:
    """Match the last ``days`` of uploads against ``entries`` and publish what that decides."""
    since = datetime.now(UTC) - timedelta(days=days)
    decisions = [d async for d in read_records(settings, settings.topic_decisions, ModerationDecision, False)]
    uploads = {u.event_id: u for u in latest_uploads(decisions, since)}
    if archive:
        try:
            for upload in archived_uploads(settings, since):
                # The topic is newer than the archive for the uploads both hold.
                if upload.event_id not in uploads or uploads[upload.event_id].decided_at < upload.decided_at:
                    uploads[upload.event_id] = upload
        except Exception as exc:  # no archive bucket, or the object store away: the topic alone
            log.warning("archive not searched", extra={"detail": f"{type(exc).__name__}: {exc}"})
    scanned, decided = retro_decisions(only_these(banks, entries), uploads.values())
    async with kafka_producer(settings) as producer:
        for decision in decided:
            await producer.send_and_wait(settings.topic_decisions, decision.to_bytes(), key=decision.event_id.encode())
            if decision.review_queue is not None:
                request = ReviewRequest.of(decision)
                await producer.send_and_wait(
                    settings.topic_review_requests, request.to_bytes(), key=decision.event_id.encode()
                )
    return RetroReport(scanned=scanned, matched=len(decided), decisions=decided)
