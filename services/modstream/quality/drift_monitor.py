"""Drift as the archive grows: tallies in Redis, gauges for Prometheus, the audit rate raised.

The archiver hands every batch of decisions it has stored to ``DriftMonitor.archived``.
The batch is tallied (``drift.tally``) and added to per-window counters in Redis, shared by
every archiver and kept across restarts; only the windows a batch touched are compared
again, so nothing re-reads history. Keys (prefix ``drift:``): ``first:<series>`` the first
window seen, ``w:<series>:<window>`` a window's counts (expiring), ``ref:<series>`` the
reference's counts, ``audit-rate`` tenant -> raised audit rate (read by workers),
``raised:<tenant>`` the labels that raised it, ``raised-since:<tenant>`` label -> the start of
the window that raised it (ISO 8601) and the model version of the decisions that did, as
``<start> <model version>``.

``DriftMonitor.statuses`` reads it back: each series' newest comparable window and whether its
label drifts now, and since when (model cards show it).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import redis.asyncio as aioredis

from modstream.core import metrics
from modstream.core.audit_rates import AUDIT_RATES, raised_audit_rates
from modstream.core.events import ModerationDecision
from modstream.core.settings import Settings
from modstream.quality.drift import (
    DECISIONS,
    SLOTS,
    AuditRule,
    Counts,
    Drift,
    Reference,
    Series,
    drift,
    tally,
    window_of,
)

log = logging.getLogger("modstream.drift")
PREFIX = "drift:"
# How far back a status looks for the newest window it can compare (the Quality page's charts too).
RECENT_WINDOWS = 48
Audit = Callable[..., Awaitable[None]]  # (actor, action, **details)


def _series_key(series: Series) -> str:
    return f"{series.tenant}|{series.label}|{series.model_version}"


class DriftStore:
    def __init__(self, client: "aioredis.Redis", window_seconds: float, reference: Reference) -> None:
        self._redis = client
        self._window_seconds = window_seconds
        self._reference = reference
        # Kept well past the reference: a pinned period may lie far back.
        self._retention = int(max(window_seconds * (reference.windows + 48), 7 * 24 * 3600))

    async def add(self, counts: dict[tuple[Series, int], Counts]) -> None:
        """Add a batch's tallies: two round trips however many windows it touches."""
        # Oldest window first, so that a series new in this batch starts at its first window.
        items = sorted(counts.items(), key=lambda item: item[0][1])
        if not items:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for (series, window), _ in items:
                pipe.set(PREFIX + "first:" + _series_key(series), window, nx=True, get=True)
            firsts = await pipe.execute()
        async with self._redis.pipeline(transaction=True) as pipe:
            for ((series, window), slots), raw in zip(items, firsts, strict=True):
                key = _series_key(series)
                first = int(raw) if raw is not None else window
                targets = [(f"{PREFIX}w:{key}:{window}", True)]
                if self._reference.holds(window, first, self._window_seconds):
                    targets.append((f"{PREFIX}ref:{key}", False))
                for target, expires in targets:
                    for slot in np.flatnonzero(slots):
                        pipe.hincrby(target, str(slot), int(slots[slot]))
                    if expires:
                        pipe.expire(target, self._retention)
            await pipe.execute()

    async def series(self) -> list[Series]:
        """Every series tallied so far (each keeps its first window for good)."""
        found = []
        async for key in self._redis.scan_iter(match=PREFIX + "first:*", count=1000):
            tenant, label, version = key.decode().removeprefix(PREFIX + "first:").rsplit("|", 2)
            found.append(Series(tenant, label, version))
        return sorted(found, key=lambda s: (s.tenant, s.label, s.model_version))

    async def first_window(self, series: Series) -> int | None:
        raw = await self._redis.get(PREFIX + "first:" + _series_key(series))
        return int(raw) if raw is not None else None

    async def window(self, series: Series, window: int) -> Counts:
        return await self._counts(f"{PREFIX}w:{_series_key(series)}:{window}")

    async def reference(self, series: Series) -> Counts:
        return await self._counts(PREFIX + "ref:" + _series_key(series))

    async def _counts(self, key: str) -> Counts:
        found = await self._redis.hgetall(key)  # type: ignore[misc]
        counts = np.zeros(SLOTS, dtype=np.int64)
        for slot, value in found.items():
            counts[int(slot)] = int(value)
        return counts


@dataclass(frozen=True)
class Reading:
    model_version: str
    window: int
    drift: Drift


@dataclass(frozen=True)
class Status:
    """One series now: its newest window compared with the reference (None: none of the recent
    ones can be), and whether its tenant's label drifts (the state that raises the audit rate)."""

    series: Series
    newest: tuple[datetime, Drift] | None
    drifting: bool
    since: datetime | None
    """The start of the window that made it drift (None: not drifting, or raised before this was kept)."""


# The latest reading per (tenant, label), and the raised audit rates: what the gauges show.
_readings: dict[tuple[str, str], Reading] = {}
_audit_rates: dict[str, float] = {}


class DriftMonitor:
    """An archive observer: decisions in, drift readings and audit-rate changes out."""

    def __init__(
        self, client: "aioredis.Redis", settings: Settings, audit: Audit | None = None, *, rule: AuditRule | None = None
    ) -> None:
        self.window_seconds = settings.drift_window_seconds
        self.reference = Reference(
            windows=settings.drift_reference_windows,
            since=settings.drift_reference_since,
            until=settings.drift_reference_until,
        )
        self.min_count = settings.drift_min_count
        self.rule = rule or AuditRule(
            alert=settings.drift_psi_alert, calm=settings.drift_psi_calm, rate=settings.drift_audit_rate
        )
        self.store = DriftStore(client, self.window_seconds, self.reference)
        self._redis = client
        self._audit = audit

    async def archived(self, table: str, records: Sequence[object]) -> None:
        if table != "decisions":
            return
        counted = tally((r for r in records if isinstance(r, ModerationDecision)), self.window_seconds)
        await self.store.add(counted.counts)
        latest: dict[Series, int] = {}
        for series, window in counted.counts:
            latest[series] = max(window, latest.get(series, window))
        for series, window in latest.items():
            reading = await self._read(series, window)
            if reading is not None:
                _readings[(series.tenant, series.label)] = reading
                await self._follow(series, reading)
        # As Redis has them: other archivers (or this one before a restart) may have raised some.
        _audit_rates.clear()
        _audit_rates.update(await raised_audit_rates(self._redis))

    async def history(self, series: Series, last: int, windows: int) -> list[tuple[int, Drift]]:
        """Each of the ``windows`` windows up to ``last`` that can be compared, oldest first,
        against the reference: those after a complete reference, with enough decisions on
        both sides."""
        first = await self.store.first_window(series)
        if first is None:
            return []
        reference = await self.store.reference(series)
        if reference[DECISIONS] < self.min_count:
            return []
        after = [
            w for w in range(last - windows + 1, last + 1) if self.reference.complete(w, first, self.window_seconds)
        ]
        counts = await asyncio.gather(*(self.store.window(series, w) for w in after))
        return [(w, drift(reference, c)) for w, c in zip(after, counts, strict=True) if c[DECISIONS] >= self.min_count]

    async def statuses(self, now: datetime, windows: int = RECENT_WINDOWS) -> list[Status]:
        """Every series tallied so far, as it stands at ``now``."""
        last = window_of(now, self.window_seconds)
        found = []
        for series in await self.store.series():
            compared = await self.history(series, last, windows)
            raised = PREFIX + "raised:" + series.tenant
            drifting = bool(await self._redis.sismember(raised, series.label))  # type: ignore[misc]
            recorded = await self._redis.hget(PREFIX + "raised-since:" + series.tenant, series.label)  # type: ignore[misc]
            since, _, by = recorded.decode().partition(" ") if drifting and recorded else ("", "", "")
            # Another model version of the tenant's (before or after this one) made the label drift.
            drifting = drifting and by in ("", series.model_version)
            found.append(
                Status(
                    series=series,
                    newest=(self._start(compared[-1][0]), compared[-1][1]) if compared else None,
                    drifting=drifting,
                    since=datetime.fromisoformat(since) if drifting and since else None,
                )
            )
        return found

    def _start(self, window: int) -> datetime:
        return datetime.fromtimestamp(window * self.window_seconds, UTC)

    async def _read(self, series: Series, window: int) -> Reading | None:
        """The newest window with enough decisions (this one, else the one before) against
        the reference, once the reference is complete."""
        compared = await self.history(series, window, 2)
        if not compared:
            return None
        newest, found = compared[-1]
        return Reading(series.model_version, newest, found)

    async def _follow(self, series: Series, reading: Reading) -> None:
        """Raise or lower the tenant's audit rate as this label starts or stops drifting."""
        psi = reading.drift.psi
        members = PREFIX + "raised:" + series.tenant
        since = PREFIX + "raised-since:" + series.tenant
        was = bool(await self._redis.sismember(members, series.label))  # type: ignore[misc]
        now = self.rule.raised_after(psi, was)
        if now == was:
            return
        if now:
            await self._redis.sadd(members, series.label)  # type: ignore[misc]
            started = f"{self._start(reading.window).isoformat()} {series.model_version}"
            await self._redis.hset(since, series.label, started)  # type: ignore[misc]
            await self._redis.hset(AUDIT_RATES, series.tenant, str(self.rule.rate))  # type: ignore[misc]
        else:
            await self._redis.srem(members, series.label)  # type: ignore[misc]
            await self._redis.hdel(since, series.label)  # type: ignore[misc]
            if not await self._redis.scard(members):  # type: ignore[misc]
                await self._redis.hdel(AUDIT_RATES, series.tenant)  # type: ignore[misc]
        action = "audit_rate_raised" if now else "audit_rate_restored"
        log.warning(
            "label drift changes the audit rate",
            extra={"tenant": series.tenant, "label": series.label, "psi": round(psi, 4), "action": action},
        )
        if self._audit is not None:
            await self._audit(
                "drift-monitor",
                action,
                tenant=series.tenant,
                label=series.label,
                psi=round(psi, 4),
                rate=self.rule.rate if now else "policy",
            )


def _gauge(read: Callable[[Reading], float]) -> Callable[[], Iterable[tuple[float, dict[str, str]]]]:
    return lambda: [
        (read(r), {"tenant": tenant, "label": label, "model_version": r.model_version})
        for (tenant, label), r in list(_readings.items())
    ]


# Unitless: the names are what the alert rules and dashboards query.
metrics.observe_gauge(
    "modstream.drift.psi", "", "PSI of a label's scores: latest window vs reference", _gauge(lambda r: r.drift.psi)
)
metrics.observe_gauge(
    "modstream.drift.js",
    "",
    "Jensen-Shannon divergence (bits): latest window vs reference",
    _gauge(lambda r: r.drift.js),
)
metrics.observe_gauge(
    "modstream.drift.decision_rate_change",
    "",
    "Share of decisions reaching a label's threshold: latest window minus reference",
    lambda: [
        (change, {"tenant": tenant, "label": label, "level": level, "model_version": r.model_version})
        for (tenant, label), r in list(_readings.items())
        for level, change in (("review", r.drift.review_rate_change), ("block", r.drift.block_rate_change))
    ],
)
metrics.observe_gauge(
    "modstream.drift.audit_rate",
    "",
    "Audit sample rate raised by drift, per tenant (absent: the policy's own)",
    lambda: [(rate, {"tenant": tenant}) for tenant, rate in list(_audit_rates.items())],
)
