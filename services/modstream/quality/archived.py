"""The quality room's reading of the archive: the period's labelled sample and its blind
double reviews (through ``core.evidence``, where the rule of which verdict counts lives),
measured as ``modstream quality report`` and the Quality page show them."""

from collections.abc import Iterable
from dataclasses import dataclass

from modstream.core import metrics
from modstream.core.evidence import SET_ASIDE_REASONS, Period, Sample, review_pairs, sampled_verdicts
from modstream.core.lake import open_archive
from modstream.core.settings import Settings
from modstream.quality.agreement import AgreementReport, agreement_report
from modstream.quality.report import QualityReport, quality_report


@dataclass(frozen=True)
class Measured:
    """What ``modstream quality report`` and the Quality page show for one period."""

    sample: Sample
    report: QualityReport
    reviewers: AgreementReport


def measure(settings: Settings, period: Period, *, only_label: str | None = None) -> Measured:
    """Read the period from the archive (whole days, pruned before reading) and measure it:
    per tenant when the period names one. Blocking: DuckDB, then the arithmetic."""
    since, until = period.days()
    with open_archive(settings, since=since, until=until) as archive:
        sample = sampled_verdicts(archive, period)
        pairs = review_pairs(archive, period)
    _set_aside[period.tenant or ""] = sample.set_aside
    return Measured(
        sample=sample,
        report=quality_report(sample, by_tenant=period.tenant is not None, only_label=only_label),
        reviewers=agreement_report(pairs, [only_label] if only_label else sorted(sample.labels)),
    )


# What the last measurement of each tenant ("": all tenants) set apart, for the gauge.
_set_aside: dict[str, dict[str, int]] = {}


def _set_aside_readings() -> Iterable[tuple[float, dict[str, str]]]:
    return [
        (float(counts.get(reason, 0)), {"tenant": tenant or "all", "reason": reason})
        for tenant, counts in list(_set_aside.items())
        for reason in SET_ASIDE_REASONS
    ]


metrics.observe_gauge(
    "modstream.quality.verdicts_set_aside",
    "",
    "Verdicts the last quality measurement kept out of its estimates, by reason: "
    "implausible_time, off_design (an allow or block never audit-sampled), orphan (no such decision)",
    _set_aside_readings,
)
