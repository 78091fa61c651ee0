"""The labelled sample, read from the decision archive with DuckDB (the only I/O of quality).

Automatic decisions of the period (errors aside) joined with the first verdict on each
(a second review is an agreement measurement, not more truth); every label's score,
thresholds and truth pulled out as columns by DuckDB, so Python sees plain arrays.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np

from modstream.core.lake import open_archive
from modstream.core.events import DECIDING_JOB_KINDS
from modstream.core.settings import Settings
from modstream.quality.agreement import AgreementReport, Pair, agreement_report
from modstream.quality.report import QualityReport, quality_report
from modstream.quality.sample import LabelColumns, Sample


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


# Verdicts that decided: blind second reviews and labelling jobs (chosen by likeness, not by
# the policy's sampling) would bias the weighted sample.
_DECIDING = "(" + ", ".join(f"'{kind}'" for kind in DECIDING_JOB_KINDS) + ")"

_JOINED = """
WITH automatic AS (SELECT * FROM decisions WHERE {where}),
first_verdict AS (
    SELECT automatic_decision_id, verdict, labels FROM verdicts WHERE job_kind IN {deciding}
    QUALIFY row_number() OVER (PARTITION BY automatic_decision_id ORDER BY occurred_at) = 1
)
SELECT {columns}
FROM automatic a LEFT JOIN first_verdict v ON v.automatic_decision_id = a.decision_id
ORDER BY a.occurred_at
"""


def labels_in(connection: duckdb.DuckDBPyConnection, period: Period) -> list[str]:
    """The labels the period's policies had thresholds for."""
    where, params = period.where()
    rows = connection.execute(
        f"SELECT DISTINCT unnest(map_keys(thresholds)) AS label FROM decisions WHERE {where} ORDER BY label", params
    ).fetchall()
    return [str(row[0]) for row in rows]


def load_sample(connection: duckdb.DuckDBPyConnection, period: Period, extra_labels: Sequence[str] = ()) -> Sample:
    """The period's automatic decisions with their first verdicts, a column set per label the
    policies had thresholds for, and per label of ``extra_labels`` too (a label the policy
    does not trigger on yet: its scores and truth, NaN thresholds)."""
    labels = labels_in(connection, period)
    labels += [label for label in dict.fromkeys(extra_labels) if label not in labels]
    columns = [
        "a.tenant",
        "coalesce(a.model_version, '') AS model_version",
        "a.decision AS outcome",
        "a.audit_rate",
        "a.audit_sample",
        "coalesce(v.verdict, '') AS verdict",
    ]
    for i, label in enumerate(labels):
        literal = "'" + label.replace("'", "''") + "'"
        columns += [
            f"coalesce(a.scores[{literal}], 'NaN'::DOUBLE) AS score_{i}",
            f"coalesce(a.thresholds[{literal}].review_at, 'NaN'::DOUBLE) AS review_at_{i}",
            f"coalesce(a.thresholds[{literal}].block_at, 'NaN'::DOUBLE) AS block_at_{i}",
            f"coalesce(list_contains(v.labels, {literal}), false) AS truth_{i}",
        ]
    where, params = period.where()
    query = _JOINED.format(where=where, columns=", ".join(columns), deciding=_DECIDING)
    found = connection.execute(query, params).fetchnumpy()
    return Sample(
        tenant=np.asarray(found["tenant"], dtype=np.str_),
        model_version=np.asarray(found["model_version"], dtype=np.str_),
        outcome=np.asarray(found["outcome"], dtype=np.str_),
        audit_rate=np.asarray(found["audit_rate"], dtype=np.float64),
        audit_sample=np.asarray(found["audit_sample"], dtype=np.bool_),
        verdict=np.asarray(found["verdict"], dtype=np.str_),
        labels={
            label: LabelColumns(
                score=np.asarray(found[f"score_{i}"], dtype=np.float64),
                review_at=np.asarray(found[f"review_at_{i}"], dtype=np.float64),
                block_at=np.asarray(found[f"block_at_{i}"], dtype=np.float64),
                truth=np.asarray(found[f"truth_{i}"], dtype=np.bool_),
            )
            for i, label in enumerate(labels)
        },
    )


def scores_in(connection: duckdb.DuckDBPyConnection, period: Period) -> tuple[list[dict[str, float]], float]:
    """Every automatic decision's scores in the period, and the days it spans (for rates per day)."""
    where, params = period.where()
    rows = connection.execute(f"SELECT scores FROM decisions WHERE {where}", params).fetchall()
    first, last = connection.execute(
        f"SELECT min(occurred_at), max(occurred_at) FROM decisions WHERE {where}", params
    ).fetchone() or (None, None)
    start, end = period.since or first, period.until or last
    days = (end - start).total_seconds() / 86400 if start is not None and end is not None else 0.0
    return [dict(row[0]) for row in rows], days


_PAIRS = """
WITH v AS (SELECT * FROM verdicts WHERE {where}),
first AS (
    SELECT * FROM v WHERE job_kind IN {deciding}
    QUALIFY row_number() OVER (PARTITION BY automatic_decision_id ORDER BY occurred_at) = 1
),
second AS (
    SELECT * FROM v WHERE job_kind = 'second_review'
    QUALIFY row_number() OVER (PARTITION BY automatic_decision_id ORDER BY occurred_at) = 1
)
SELECT f.automatic_decision_id, f.reviewer, s.reviewer, f.labels, s.labels, f.verdict, s.verdict
FROM first f JOIN second s USING (automatic_decision_id)
WHERE f.reviewer <> s.reviewer
"""


def verdict_pairs(connection: duckdb.DuckDBPyConnection, period: Period) -> list[Pair]:
    """Items of the period judged twice, blind, by two reviewers."""
    where, params = period.where_verdicts()
    rows = connection.execute(_PAIRS.format(where=where, deciding=_DECIDING), params).fetchall()
    return [
        Pair(
            item=str(item),
            first_reviewer=str(first),
            second_reviewer=str(second),
            first_labels=frozenset(first_labels or ()),
            second_labels=frozenset(second_labels or ()),
            first_verdict=str(first_verdict),
            second_verdict=str(second_verdict),
        )
        for item, first, second, first_labels, second_labels, first_verdict, second_verdict in rows
    ]


@dataclass(frozen=True)
class Measured:
    """What ``modstream quality report`` and the Quality page show for one period."""

    sample: Sample
    report: QualityReport
    reviewers: AgreementReport


def measure(settings: Settings, period: Period, *, only_label: str | None = None) -> Measured:
    """Read the period from the archive (whole days, pruned before reading) and measure it:
    per tenant when the period names one. Blocking: DuckDB, then the arithmetic."""
    since, until = (moment.date() if moment else None for moment in (period.since, period.until))
    with open_archive(settings, since=since, until=until) as archive:
        sample = load_sample(archive, period)
        pairs = verdict_pairs(archive, period)
    return Measured(
        sample=sample,
        report=quality_report(sample, by_tenant=period.tenant is not None, only_label=only_label),
        reviewers=agreement_report(pairs, [only_label] if only_label else sorted(sample.labels)),
    )
