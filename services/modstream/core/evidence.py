"""Evidence: every question asked of the decision archive, answered in typed rows.

Quality estimates, threshold advice, reviewer agreement, head training, labelling-queue
seeding, bank retro-matching, model comparison and the chaos run's archive check read the
archive only through here, over a connection from ``core.lake.open_archive`` (or any DuckDB
connection with the tables of ``core.archive`` registered under their names).

Which verdict counts is decided here, by one of two named rules:

``sampled_verdicts`` — for estimates (precision, recall, advice, agreement): per automatic
decision, the **first** verdict of a deciding kind (``DECIDING_JOB_KINDS``) that the sampling
design can have produced. The estimates weigh each labelled decision by its stratum
(``quality.sample``), which is sound only for verdicts the design asked for: every ``review``
decision, and ``allow``/``block`` decisions drawn as audit samples. The first verdict is the
one given blind to later events; a later look at the same decision (a re-review, an appeal)
is a different process, chosen by what happened after. Set apart, with their reason, and
never counted: a verdict dated before its decision or in the future (``implausible_time``: a
1970 timestamp would otherwise be "first" and replace the real verdict), a verdict on an
``allow`` or ``block`` that was not audit-sampled (``off_design``: counting it would break
the weights), and a verdict naming a decision the archive does not hold (``orphan``).

``current_verdicts`` — for training, seeding and model comparison: per event, the **latest**
verdict that is not a blind second review, given at or after a moment (a label's definition:
before it, reviewers could not tick it). A learner wants the best truth known now, and
labelling jobs (images chosen by likeness) are welcome there; a blind second review measures
reviewers and published nothing.

One rule could not serve both: the first verdict is what an unbiased estimate needs, the
latest is what a learner needs, and labelling jobs are exactly what must stay out of one and
in the other.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypeVar

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from modstream.core.events import BY_A_PERSON, DECIDING_JOB_KINDS, SECOND_REVIEW

Strings = npt.NDArray[np.str_]
Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]
Micros = npt.NDArray[np.int64]
Row = TypeVar("Row")

# Why a verdict is set apart from the estimates (see the module's docstring).
IMPLAUSIBLE_TIME = "implausible_time"
OFF_DESIGN = "off_design"
ORPHAN = "orphan"
SET_ASIDE_REASONS = (IMPLAUSIBLE_TIME, OFF_DESIGN, ORPHAN)
# A verdict this far past the moment of reading is a clock fault, not the future.
CLOCK_SKEW = timedelta(minutes=5)
# Verdicts come minutes to hours after their decision: a reader opens the archive this much
# before a period, so a verdict in the period finds a decision made just before it.
VERDICT_LOOKBACK = timedelta(days=2)


def _literals(values: Iterable[str]) -> str:
    return "(" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + ")"


def _typed(cursor: duckdb.DuckDBPyConnection, kind: type[Row], rows: Sequence[tuple[Any, ...]]) -> list[Row]:
    """Rows as ``kind``, matched to its fields by column name (never by position)."""
    names = [column[0] for column in cursor.description or ()]
    wanted = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    if missing := wanted - set(names):
        raise ValueError(f"the query gives no {sorted(missing)} for {kind.__name__}")
    return [kind(**{n: v for n, v in zip(names, row, strict=True) if n in wanted}) for row in rows]


def _all(
    connection: duckdb.DuckDBPyConnection, kind: type[Row], query: str, params: Sequence[Any] | dict[str, Any]
) -> list[Row]:
    cursor = connection.execute(query, params if isinstance(params, dict) else list(params))
    return _typed(cursor, kind, cursor.fetchall())


# --- the period: which automatic decisions a question is about ---------------------------


@dataclass(frozen=True)
class Period:
    """Which decisions: by tenant, model version and time (``until`` excluded)."""

    tenant: str | None = None
    model_version: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The automatic, scored decisions of the period, as an SQL condition and its parameters."""
        return self._conditions(["source = 'automatic'", "decision IN ('allow', 'review', 'block')"], by_model=True)

    def where_verdicts(self) -> tuple[str, list[Any]]:
        """Its verdicts (a verdict names the model whose scores it saw, but pairs span models)."""
        return self._conditions(["true"], by_model=False)

    def days(self) -> tuple[date | None, date | None]:
        """The archive's days to open for the period: from ``VERDICT_LOOKBACK`` before it."""
        since = None if self.since is None else (self.since - VERDICT_LOOKBACK).date()
        return since, None if self.until is None else self.until.date()

    def _conditions(self, fixed: list[str], *, by_model: bool) -> tuple[str, list[Any]]:
        clauses, params = list(fixed), []
        for clause, value in (
            ("tenant = ?", self.tenant),
            ("model_version = ?", self.model_version if by_model else None),
            ("occurred_at >= ?", self.since),
            ("occurred_at < ?", self.until),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        return " AND ".join(clauses), params


# --- the sampled rule: estimates ------------------------------------------------------------

_DECIDING_VERDICTS = f"""
deciding AS (
    SELECT v.*,
        CASE
            WHEN d.decision_id IS NULL THEN '{ORPHAN}'
            WHEN v.occurred_at < d.occurred_at OR v.occurred_at > $now THEN '{IMPLAUSIBLE_TIME}'
            WHEN NOT (d.decision = 'review' OR coalesce(d.audit_sample, false)) THEN '{OFF_DESIGN}'
        END AS set_aside
    FROM verdicts v
    LEFT JOIN (SELECT decision_id, occurred_at, decision, audit_sample FROM decisions) d
        ON d.decision_id = v.automatic_decision_id
    WHERE v.job_kind IN {_literals(DECIDING_JOB_KINDS)}
),
sampled AS (
    SELECT * FROM deciding WHERE set_aside IS NULL
    QUALIFY row_number() OVER (PARTITION BY automatic_decision_id ORDER BY occurred_at, verdict_id) = 1
)"""


def _sampled(query: str) -> str:
    """``query`` with the ``deciding`` and ``sampled`` verdicts in scope (parameter ``$now``)."""
    return f"WITH {_DECIDING_VERDICTS},\n{query}"


@dataclass(frozen=True, eq=False)
class LabelColumns:
    """One label's values per decision (NaN where the decision had no such score/threshold)."""

    score: Floats
    review_at: Floats
    block_at: Floats
    truth: Bools
    """Whether the reviewer's label set holds the label (False where unlabelled)."""


@dataclass(frozen=True, eq=False)
class Sample:
    """Automatic decisions of a period, one entry per decision in every array."""

    tenant: Strings
    model_version: Strings
    outcome: Strings
    """allow | review | block, as decided automatically."""
    audit_rate: Floats
    audit_sample: Bools
    verdict: Strings
    """approve | remove from the sampled verdict; "" where nobody reviewed it."""
    labels: dict[str, LabelColumns] = field(default_factory=dict)
    set_aside: dict[str, int] = field(default_factory=dict)
    """Verdicts of the period left out of the sample, by reason (``SET_ASIDE_REASONS``)."""
    occurred_at: Micros | None = None
    """When each decision happened (microseconds since the epoch); None where not read."""

    def __len__(self) -> int:
        return len(self.outcome)

    @property
    def labelled(self) -> Bools:
        return np.asarray(self.verdict != "", dtype=np.bool_)

    def where(self, keep: Bools) -> "Sample":
        """The decisions where ``keep`` is true."""
        return Sample(
            tenant=self.tenant[keep],
            model_version=self.model_version[keep],
            outcome=self.outcome[keep],
            audit_rate=self.audit_rate[keep],
            audit_sample=self.audit_sample[keep],
            verdict=self.verdict[keep],
            labels={
                name: LabelColumns(c.score[keep], c.review_at[keep], c.block_at[keep], c.truth[keep])
                for name, c in self.labels.items()
            },
            set_aside=self.set_aside,
            occurred_at=None if self.occurred_at is None else self.occurred_at[keep],
        )


def labels_in(connection: duckdb.DuckDBPyConnection, period: Period) -> list[str]:
    """The labels the period's policies had thresholds for."""
    where, params = period.where()
    rows = connection.execute(
        f"SELECT DISTINCT unnest(map_keys(thresholds)) AS label FROM decisions WHERE {where} ORDER BY label", params
    ).fetchall()
    return [str(row[0]) for row in rows]


def sampled_verdicts(
    connection: duckdb.DuckDBPyConnection,
    period: Period,
    extra_labels: Sequence[str] = (),
    *,
    now: datetime | None = None,
) -> Sample:
    """The period's automatic decisions with their sampled verdicts, a column set per label the
    policies had thresholds for and per label of ``extra_labels`` (a label the policy does not
    trigger on yet: its scores and truth, NaN thresholds), and the verdicts set apart."""
    labels = labels_in(connection, period)
    labels += [label for label in dict.fromkeys(extra_labels) if label not in labels]
    columns = [
        "a.tenant",
        "coalesce(a.model_version, '') AS model_version",
        "a.decision AS outcome",
        "a.audit_rate",
        "a.audit_sample",
        "coalesce(v.verdict, '') AS verdict",
        "epoch_us(a.occurred_at) AS occurred_at",
    ]
    for i, label in enumerate(labels):
        literal = _literals([label])[1:-1]
        columns += [
            f"coalesce(a.scores[{literal}], 'NaN'::DOUBLE) AS score_{i}",
            f"coalesce(a.thresholds[{literal}].review_at, 'NaN'::DOUBLE) AS review_at_{i}",
            f"coalesce(a.thresholds[{literal}].block_at, 'NaN'::DOUBLE) AS block_at_{i}",
            f"coalesce(list_contains(v.labels, {literal}), false) AS truth_{i}",
        ]
    where, params = period.where()
    named = _named(params, now)
    query = _sampled(
        f"automatic AS (SELECT * FROM decisions WHERE {_numbered(where)})\n"
        f"SELECT {', '.join(columns)}\n"
        "FROM automatic a LEFT JOIN sampled v ON v.automatic_decision_id = a.decision_id\n"
        "ORDER BY a.occurred_at, a.decision_id"
    )
    found = connection.execute(query, named).fetchnumpy()
    return Sample(
        tenant=np.asarray(found["tenant"], dtype=np.str_),
        model_version=np.asarray(found["model_version"], dtype=np.str_),
        outcome=np.asarray(found["outcome"], dtype=np.str_),
        audit_rate=np.asarray(found["audit_rate"], dtype=np.float64),
        audit_sample=np.asarray(found["audit_sample"], dtype=np.bool_),
        verdict=np.asarray(found["verdict"], dtype=np.str_),
        occurred_at=np.asarray(found["occurred_at"], dtype=np.int64),
        labels={
            label: LabelColumns(
                score=np.asarray(found[f"score_{i}"], dtype=np.float64),
                review_at=np.asarray(found[f"review_at_{i}"], dtype=np.float64),
                block_at=np.asarray(found[f"block_at_{i}"], dtype=np.float64),
                truth=np.asarray(found[f"truth_{i}"], dtype=np.bool_),
            )
            for i, label in enumerate(labels)
        },
        set_aside=set_aside(connection, period, now=now),
    )


def set_aside(connection: duckdb.DuckDBPyConnection, period: Period, *, now: datetime | None = None) -> dict[str, int]:
    """The period's deciding verdicts kept out of the estimates, by reason (every reason named)."""
    where, params = period.where_verdicts()
    named = _named(params, now)
    rows = connection.execute(
        _sampled(
            f"counted AS (SELECT set_aside FROM deciding WHERE set_aside IS NOT NULL AND {_numbered(where)})\n"
            "SELECT set_aside, count(*) FROM counted GROUP BY set_aside"
        ),
        named,
    ).fetchall()
    found = {str(reason): int(n) for reason, n in rows}
    return {reason: found.get(reason, 0) for reason in SET_ASIDE_REASONS}


def _named(params: list[Any], now: datetime | None) -> dict[str, Any]:
    """``Period``'s parameters as ``$p0``, ``$p1``…, beside ``$now`` (the latest plausible time)."""
    return {"now": (now or datetime.now(UTC)) + CLOCK_SKEW, **{f"p{i}": p for i, p in enumerate(params)}}


def _numbered(where: str) -> str:
    """``Period``'s ``?`` placeholders as ``$p0``, ``$p1``…, to sit beside the named ``$now``."""
    parts = where.split("?")
    return "".join(part + (f"$p{i}" if i < len(parts) - 1 else "") for i, part in enumerate(parts))


@dataclass(frozen=True)
class Pair:
    """Two blind verdicts on one item."""

    item: str
    first_reviewer: str
    second_reviewer: str
    first_labels: frozenset[str]
    second_labels: frozenset[str]
    first_verdict: str
    second_verdict: str


def review_pairs(connection: duckdb.DuckDBPyConnection, period: Period, *, now: datetime | None = None) -> list[Pair]:
    """Items of the period judged twice, blind, by two reviewers: the sampled verdict and the
    first second review."""
    where, params = period.where_verdicts()
    named = _named(params, now)
    query = _sampled(
        f"first AS (SELECT * FROM sampled WHERE {_numbered(where)}),\n"
        f"second AS (\n"
        f"    SELECT * FROM verdicts WHERE job_kind = '{SECOND_REVIEW}' AND {_numbered(where)}\n"
        "    QUALIFY row_number() OVER (PARTITION BY automatic_decision_id ORDER BY occurred_at, verdict_id) = 1\n"
        ")\n"
        "SELECT f.automatic_decision_id AS item, f.reviewer AS first_reviewer, s.reviewer AS second_reviewer,\n"
        "       f.labels AS first_labels, s.labels AS second_labels,\n"
        "       f.verdict AS first_verdict, s.verdict AS second_verdict\n"
        "FROM first f JOIN second s USING (automatic_decision_id)\n"
        "WHERE f.reviewer <> s.reviewer"
    )
    cursor = connection.execute(query, named)
    rows = _typed(cursor, _PairRow, cursor.fetchall())
    return [
        Pair(
            item=r.item,
            first_reviewer=r.first_reviewer,
            second_reviewer=r.second_reviewer,
            first_labels=frozenset(r.first_labels or ()),
            second_labels=frozenset(r.second_labels or ()),
            first_verdict=r.first_verdict,
            second_verdict=r.second_verdict,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class _PairRow:
    item: str
    first_reviewer: str
    second_reviewer: str
    first_labels: list[str] | None
    second_labels: list[str] | None
    first_verdict: str
    second_verdict: str


def automatic_scores(connection: duckdb.DuckDBPyConnection, period: Period) -> tuple[list[dict[str, float]], float]:
    """Every automatic decision's scores in the period, and the days it spans (for rates per day)."""
    where, params = period.where()
    rows = connection.execute(f"SELECT scores FROM decisions WHERE {where}", params).fetchall()
    first, last = connection.execute(
        f"SELECT min(occurred_at), max(occurred_at) FROM decisions WHERE {where}", params
    ).fetchone() or (None, None)
    start, end = period.since or first, period.until or last
    days = (end - start).total_seconds() / 86400 if start is not None and end is not None else 0.0
    return [dict(row[0]) for row in rows], days


# --- the current rule: training, seeding, comparison -----------------------------------------


class Judgement(Protocol):
    """What the current rule needs of a verdict (a ``ReviewVerdict`` or a ``VerdictRow``)."""

    @property
    def event_id(self) -> str: ...
    @property
    def job_kind(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...


J = TypeVar("J", bound=Judgement)


def current_verdicts(verdicts: Iterable[J], since: datetime | None = None) -> dict[str, J]:
    """Event id -> the verdict that counts for it now: the latest given at or after ``since``
    that is not a blind second review. Of two given at the same moment, the later in
    ``verdicts`` counts."""
    latest: dict[str, J] = {}
    for verdict in verdicts:
        if verdict.job_kind == SECOND_REVIEW or (since is not None and verdict.occurred_at < since):
            continue
        known = latest.get(verdict.event_id)
        if known is None or verdict.occurred_at >= known.occurred_at:
            latest[verdict.event_id] = verdict
    return latest


@dataclass(frozen=True)
class VerdictRow:
    """An archived verdict, as the current rule and learners need it."""

    event_id: str
    job_kind: str
    occurred_at: datetime
    labels: list[str]


def verdicts_between(
    connection: duckdb.DuckDBPyConnection, since: datetime, until: datetime | None = None
) -> list[VerdictRow]:
    """Archived verdicts given from ``since`` to ``until`` (inclusive), oldest first."""
    return _all(
        connection,
        VerdictRow,
        "SELECT event_id, job_kind, occurred_at, coalesce(labels, []) AS labels FROM verdicts "
        "WHERE occurred_at >= $since AND ($until IS NULL OR occurred_at <= $until) "
        "ORDER BY occurred_at, verdict_id",
        {"since": since, "until": until},
    )


@dataclass(frozen=True)
class Embedded:
    """An event's embedding from its latest archived decision that has one."""

    event_id: str
    embedding: bytes
    embedding_model: str


def latest_embeddings(connection: duckdb.DuckDBPyConnection) -> dict[str, Embedded]:
    rows = _all(
        connection,
        Embedded,
        "SELECT event_id, embedding, embedding_model FROM decisions WHERE embedding IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY occurred_at DESC, decision_id DESC) = 1",
        (),
    )
    return {row.event_id: row for row in rows}


@dataclass(frozen=True)
class Candidate:
    """An archived automatic decision with an embedding, unlabelled: for a labelling queue."""

    event_id: str
    decision_id: str
    tenant: str
    bucket: str
    key: str
    decision: str
    scores: dict[str, float]
    triggered: list[dict[str, Any]]
    reasons: list[str]
    model_name: str | None
    model_version: str | None
    model_components: dict[str, str] | None
    policy_id: str
    policy_version: str
    thresholds: dict[str, dict[str, float]]
    uploaded_at: datetime
    embedding: bytes


def unlabelled_candidates(
    connection: duckdb.DuckDBPyConnection,
    embedding_model: str,
    *,
    since: datetime,
    until: datetime,
    labelled_since: datetime,
    tenant: str | None = None,
    batch: int = 10_000,
) -> Iterator[list[Candidate]]:
    """The period's automatic decisions (the first per event) with an embedding from
    ``embedding_model`` whose event has no current verdict since ``labelled_since``, in batches."""
    labelled = current_verdicts(verdicts_between(connection, labelled_since), labelled_since)
    connection.register("labelled_events", pa.table({"event_id": pa.array(sorted(labelled), pa.string())}))
    names = ", ".join(f.name for f in fields(Candidate))
    cursor = connection.execute(
        f"SELECT {names} FROM decisions "
        "WHERE source = 'automatic' AND embedding_model = $model AND occurred_at >= $since AND occurred_at <= $until "
        "AND ($tenant IS NULL OR tenant = $tenant) AND event_id NOT IN (SELECT event_id FROM labelled_events) "
        "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY occurred_at, decision_id) = 1",
        {"model": embedding_model, "since": since, "until": until, "tenant": tenant},
    )
    while rows := cursor.fetchmany(batch):
        yield _typed(cursor, Candidate, rows)


# --- bank retro-matching, the chaos run ------------------------------------------------------


@dataclass(frozen=True)
class HashedUpload:
    """An upload with hashes as its latest archived decision left it."""

    event_id: str
    tenant: str
    bucket: str
    key: str
    sha256: str
    md5: str
    pdq: str | None
    pdq_quality: int | None
    signals: dict[str, str] | None
    uploaded_at: datetime
    decided_at: datetime
    decision: str
    by_person: bool
    policy_id: str
    policy_version: str


def hashed_uploads(connection: duckdb.DuckDBPyConnection, since: datetime) -> list[HashedUpload]:
    """Each upload decided since ``since`` that has hashes, as its latest decision left it
    (``by_person``: a person decided it at some point, a reviewer or an appeal)."""
    latest = ", ".join(
        f"arg_max({column}, occurred_at) AS {column}"
        for column in (
            "tenant",
            "bucket",
            "key",
            "sha256",
            "md5",
            "pdq",
            "pdq_quality",
            "signals",
            "uploaded_at",
            "decision",
        )
    )
    return _all(
        connection,
        HashedUpload,
        f"SELECT event_id, {latest}, max(occurred_at) AS decided_at, "
        f"bool_or(source IN {BY_A_PERSON}) AS by_person, "
        "arg_max(policy_id, occurred_at) AS policy_id, arg_max(policy_version, occurred_at) AS policy_version "
        "FROM decisions WHERE occurred_at >= ? AND sha256 IS NOT NULL GROUP BY event_id",
        [since],
    )


def decisions_of_events(connection: duckdb.DuckDBPyConnection, events: Iterable[str]) -> set[str]:
    """The ids of archived decisions on ``events``."""
    connection.register("asked_events", pa.table({"event_id": pa.array(sorted(set(events)), pa.string())}))
    rows = connection.execute(
        "SELECT decision_id FROM decisions WHERE event_id IN (SELECT event_id FROM asked_events)"
    ).fetchall()
    return {str(row[0]) for row in rows}
