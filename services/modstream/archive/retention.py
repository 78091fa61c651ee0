"""Retention enforced: each tenant's data older than its policy's limits removed, on a schedule.

The rules are ``core.retention``'s, one per tenant (the composer hands over a lookup, so this
room does not read policies). Every archived tenant is visited:

- decisions (with their shadow scores) and verdicts older than their limit are deleted from
  the tables, and the files that held them with them (``erase.erase_rows``);
- embeddings older than theirs are cleared inside the rows that stay (an overwrite of only
  the rows that still have one; files holding none are never read again: Iceberg's null counts
  prune them);
- images older than theirs are removed from the object store with every version, found by
  their automatic decisions, and what was made of them (occlusion maps) with them. An image
  whose restriction can still be appealed (a block within the tenant's appeal window) is held
  back and visited again once the window has closed. Which upload times have been visited, and
  which images are held back, is kept per tenant in the archive bucket
  (``retention/images-<tenant>.json``), so each run reads only the new hours.

What each run removed is logged and counted (``modstream.erased.items``, cause retention).
"""

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pyarrow as pa
from pydantic import BaseModel, Field

from modstream.archive.erase import erase_rows, rewriting
from modstream.core import lake, metrics
from modstream.core.appeals import AppealRules
from modstream.core.archive import DECISIONS, SHADOW, VERDICTS
from modstream.core.retention import Kind, Retention
from modstream.core.settings import Settings
from modstream.core.storage import ObjectMissing, ObjectStore

log = logging.getLogger("modstream.archive")
STATE = "retention/images-{tenant}.json"  # in the archive bucket
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Retained:
    """What one run removed of one tenant's data of one kind."""

    tenant: str
    kind: Kind
    before: datetime  # removed: what is older than this
    removed: int  # rows, embeddings or image versions
    held: int = 0  # images kept back while their restriction can be appealed
    derived: int = 0  # objects made of the images removed (occlusion maps), removed with them


def _nothing_derived(event_ids: list[str]) -> int:
    return 0


@dataclass(frozen=True)
class Rules:
    """A tenant's retention, and its appeal rules (an appealable image stays); and what else was
    made of uploads' images, to go with them (``derived``: event ids -> how many removed; the
    composer hands over the explain room's occlusion maps)."""

    retention: Callable[[str], Retention]
    appeals: Callable[[str], AppealRules]
    derived: Callable[[list[str]], int] = _nothing_derived


class _Held(BaseModel):
    event_id: str
    bucket: str
    key: str
    until: datetime  # when its appeal window closes


class _ImagesState(BaseModel):
    visited_until: datetime = EPOCH  # images of uploads before this were visited
    held: list[_Held] = Field(default_factory=list)


def enforce(settings: Settings, rules: Rules, now: datetime | None = None) -> list[Retained]:
    """One retention run over every tenant in the archive; what it removed. Blocking."""
    now = datetime.now(UTC) if now is None else now
    done: list[Retained] = []
    for tenant in _tenants(settings):
        for kind, before in rules.retention(tenant).cutoffs(now).items():
            if kind == "images":
                done.append(_images(settings, tenant, before, rules, now))
                continue
            older = f"tenant = '{tenant}' AND occurred_at < '{before.isoformat()}'"
            if kind == "embeddings":
                removed = _clear_embeddings(settings, f"{older} AND embedding IS NOT NULL")
            else:
                tables = (DECISIONS, SHADOW) if kind == "decisions" else (VERDICTS,)
                removed = sum(e.rows for e in erase_rows(settings, tables, older) if e.table != SHADOW.name)
            done.append(Retained(tenant, kind, before, removed))
    for retained in done:
        if retained.removed or retained.held:
            log.info("retention enforced", extra={**asdict(retained), "before": retained.before.isoformat()})
        metrics.erased_items.add(retained.removed, {"place": retained.kind, "cause": "retention"})
    return done


def _tenants(settings: Settings) -> list[str]:
    found: set[str] = set()
    for table in (DECISIONS, VERDICTS):
        stored = lake.find_table(settings, table)
        if stored is not None:
            found.update(stored.scan(selected_fields=("tenant",)).to_arrow().column(0).unique().to_pylist())
    return sorted(found)


def _clear_embeddings(settings: Settings, matching: str) -> int:
    stored = lake.find_table(settings, DECISIONS)
    if stored is None:
        return 0
    rows = stored.scan(row_filter=matching).to_arrow()
    if not len(rows):
        return 0
    at = rows.schema.get_field_index("embedding")
    cleared = rows.set_column(at, rows.schema.field(at), pa.nulls(len(rows), rows.schema.field(at).type))
    rewriting(stored, lambda t: t.overwrite(cleared, overwrite_filter=matching, snapshot_properties=lake.carried(t)))
    return len(rows)


def _images(settings: Settings, tenant: str, before: datetime, rules: Rules, now: datetime) -> Retained:
    objects = ObjectStore(settings)
    appeals = rules.appeals(tenant)
    state = _read_state(objects, settings, tenant)
    due = [h for h in state.held if h.until <= now]
    held = [h for h in state.held if h.until > now]
    if state.visited_until < before:
        uploads = _uploads(settings, tenant, state.visited_until, before)
        restricted = _latest_blocks(settings, {u.event_id for u in uploads})
        for upload in uploads:
            until = appeals.open_until(restricted[upload.event_id]) if upload.event_id in restricted else None
            if until is not None and until > now:
                held.append(upload.model_copy(update={"until": until}))
            else:
                due.append(upload)
        state.visited_until = before
    removed = sum(objects.erase(h.bucket, h.key) for h in due)
    derived = rules.derived([h.event_id for h in due]) if due else 0
    state.held = held
    _write_state(objects, settings, tenant, state)
    return Retained(tenant, "images", before, removed, held=len(held), derived=derived)


def _uploads(settings: Settings, tenant: str, since: datetime, before: datetime) -> list[_Held]:
    """The uploads whose automatic decision was made in [since, before)."""
    stored = lake.find_table(settings, DECISIONS)
    if stored is None:
        return []
    query = (
        f"tenant = '{tenant}' AND source = 'automatic' "
        f"AND occurred_at >= '{since.isoformat()}' AND occurred_at < '{before.isoformat()}'"
    )
    rows = stored.scan(row_filter=query, selected_fields=("event_id", "bucket", "key")).to_arrow().to_pylist()
    return [_Held(**row, until=EPOCH) for row in rows]


def _latest_blocks(settings: Settings, event_ids: set[str]) -> dict[str, datetime]:
    """When each of these uploads was last restricted (a block: automatic, human or on appeal)."""
    from pyiceberg.expressions import And, EqualTo, In

    stored = lake.find_table(settings, DECISIONS)
    if stored is None or not event_ids:
        return {}
    query = And(In(term="event_id", literals=event_ids), EqualTo(term="decision", value="block"))
    latest: dict[str, datetime] = {}
    for row in stored.scan(row_filter=query, selected_fields=("event_id", "occurred_at")).to_arrow().to_pylist():
        latest[row["event_id"]] = max(row["occurred_at"], latest.get(row["event_id"], row["occurred_at"]))
    return latest


def _read_state(objects: ObjectStore, settings: Settings, tenant: str) -> _ImagesState:
    try:
        data = objects.get(settings.archive_bucket, STATE.format(tenant=tenant), 1 << 30)
    except ObjectMissing:
        return _ImagesState()
    return _ImagesState.model_validate_json(data)


def _write_state(objects: ObjectStore, settings: Settings, tenant: str, state: _ImagesState) -> None:
    body = state.model_dump_json().encode()
    objects.put(settings.archive_bucket, STATE.format(tenant=tenant), body, "application/json")
