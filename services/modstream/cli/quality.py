"""``modstream quality …``: how right the decisions are, from the archive and reviewers' verdicts."""

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modstream.cli.console import as_utc, console, err
from modstream.core.settings import Settings, get_settings

if TYPE_CHECKING:
    import duckdb

    from modstream.core.events import Thresholds
    from modstream.quality.advice import Estimate

app = typer.Typer(help="Per-label quality from reviewers' verdicts, and threshold advice.", no_args_is_help=True)

TenantOption = Annotated[str | None, typer.Option(help="only this tenant's decisions (and per tenant)")]
SinceOption = Annotated[datetime | None, typer.Option(help="from this time (UTC), e.g. 2026-11-28 or 2026-11-28T06:00")]
UntilOption = Annotated[datetime | None, typer.Option(help="before this time (UTC)")]
VersionOption = Annotated[str | None, typer.Option("--model-version", help="only decisions of this model version")]


def _open(settings: Settings, since: datetime | None, until: datetime | None) -> "duckdb.DuckDBPyConnection":
    from modstream.core.archive import open_archive

    return open_archive(
        settings,
        since=since.date() if since else None,
        until=until.date() if until else None,
    )


@app.command()
def report(
    tenant: TenantOption = None,
    label: Annotated[str | None, typer.Option(help="only this label")] = None,
    model_version: VersionOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Precision, recall and F1 per label and model version at the policy's thresholds, with 95 % intervals."""
    from modstream.quality.archived import Period, measure

    settings = get_settings()
    period = Period(tenant=tenant, model_version=model_version, since=as_utc(since), until=as_utc(until))
    with console.status("reading the archive…"):
        measured = measure(settings, period, only_label=label)
    sample, result, reviewers = measured.sample, measured.report, measured.reviewers
    if as_json:
        print(json.dumps({**result.to_dict(), "reviewers": reviewers.to_dict()}, default=str, indent=2))
        return
    if not len(sample):
        err.print(f"[yellow]no automatic decision in s3://{settings.archive_bucket} for this period[/yellow]")
        raise typer.Exit(1)
    table = Table("label", "model", "tenant", "labelled", "at", "threshold", "precision", "recall", "F1")
    for row in result.labels:
        for name, at in (("review", row.at_review), ("block", row.at_block)):
            table.add_row(
                row.label,
                row.model_version,
                row.tenant or "all",
                f"{row.labelled} ({row.positives} +)",
                name,
                "-" if at.threshold is None else f"{at.threshold:.3f}",
                str(at.precision),
                str(at.recall),
                str(at.f1),
            )
    console.print(table)
    for part in result.slices:
        where = f"model {part.model_version}" + (f", tenant {part.tenant}" if part.tenant else "")
        console.print(
            f"{where}: {part.decisions} decisions, {part.labelled} with a verdict; "
            f"Hamming loss {part.hamming_loss}; automatic vs human (audit samples) {part.agreement}"
        )
        for gap in part.gaps:
            console.print(
                f"  [yellow]not covered: {gap.decisions} {gap.outcome} decisions of {gap.tenant} "
                f"(audit rate {gap.audit_rate}) have no verdict; the estimates leave them out[/yellow]"
            )
    console.print(f"reviewer agreement, from {reviewers.pairs} blind double reviews (Cohen's kappa):")
    for name, kappa in (*reviewers.by_label.items(), *reviewers.by_reviewer_pair.items()):
        console.print(f"  {name}: {kappa}")
    for reviewer, share in reviewers.with_majority.items():
        console.print(f"  {reviewer} agrees with the others' majority: {share}")


@app.command()
def suggest(
    label: Annotated[str, typer.Option(help="the label to set thresholds for")],
    target_precision: Annotated[float, typer.Option(min=0.0, max=1.0, help="block_at: precision at least this")],
    target_recall: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="review_at: recall at least this (default: keep review_at)")
    ] = None,
    tenant: TenantOption = None,
    model_version: VersionOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    queue: Annotated[
        str | None,
        typer.Option(
            help="for a label the policy does not trigger on yet: the review queue of its new rule "
            "(default: the label with dots as dashes)"
        ),
    ] = None,
    write: Annotated[
        bool, typer.Option(help="write the proposal to policies/proposed/ (never applied by itself)")
    ] = False,
) -> None:
    """Thresholds for one label from the weighted labelled sample, backtested over the period's archived scores.

    A label the policy does not trigger on yet (under `ignore`, or scored by the model and named
    nowhere) gets both thresholds from the targets and, with --write, a rule of its own in
    --queue; its verdicts count from its definition in the label registry (or --since)."""
    import asyncio

    import numpy as np

    from modstream.policy.loader import PolicyError, load_policies
    from modstream.policy.proposal import outcome_under, with_thresholds, write_proposal
    from modstream.quality.advice import NoAdvice, advise, backtest
    from modstream.quality.archived import Period, load_sample, scores_in
    from modstream.quality.label_since import counting_from, definition_times

    settings = get_settings()
    since, until = as_utc(since), as_utc(until)
    try:
        policies = load_policies(settings.policies_dir)
    except PolicyError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    policy = policies.for_tenant(tenant) if tenant else policies.default
    new = label not in policy.labels
    start = None
    if new:
        queue = _new_rule_queue(label, queue, policy.id, target_recall)
        defined = asyncio.run(definition_times(settings, [label], _warn)).get(label)
        start = counting_from(defined, since)
        where = "under ignore" if label in policy.ignore else "not named"
        console.print(f"{label} is {where} in policy {policy.id}: a new rule in queue {queue}; counting {start}")
        since = start.at
    elif queue is not None:
        err.print(
            f"[red]{label!r} already has a rule in policy {policy.id} (queue {policy.labels[label].queue}): "
            f"--queue is for a label the policy does not trigger on yet; edit the policy file to move it[/red]"
        )
        raise typer.Exit(2)
    period = Period(tenant=tenant, model_version=model_version, since=since, until=until)
    with console.status("reading the archive…"), _open(settings, since, until) as archive:
        sample = load_sample(archive, period, extra_labels=[label] if new else ())
        scores, days = scores_in(archive, period)
    if new:
        scored = int(np.sum(~np.isnan(sample.labels[label].score)))
        if not scored:
            if label in policy.ignore:
                err.print(f"[red]no archived decision of the period scores {label!r} (ignored by {policy.id})[/red]")
            else:
                known = f"its labels: {', '.join(policy.labels)}; ignored: {', '.join(policy.ignore) or '-'}"
                err.print(
                    f"[red]policy {policy.id} has no rule for {label!r}, and no archived decision of the period "
                    f"scores it ({known})[/red]"
                )
            raise typer.Exit(2)
        # Decisions from before the model scored the label would all look changed: under the
        # proposal its missing score sends them to review (missing_label). Only the others count.
        scores = [s for s in scores if label in s]
    current = None if new else policy.thresholds()[label]
    try:
        advice = advise(sample, label, current, target_precision, target_recall)
    except NoAdvice as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    proposal = with_thresholds(policy, label, advice.proposed, queue)
    moved = backtest(scores, days, outcome_under(policy), outcome_under(proposal))

    console.print(
        f"{label} for {policy.id} ({policy.version}), from {advice.labelled} labelled decisions "
        f"({advice.positives} with {label}) of {len(sample)}:"
    )
    table = Table("", "review_at", "block_at", "precision at block", "recall at block", "recall at review")
    if advice.current is None or advice.before is None:
        table.add_row("in force", "none", "none", "-", "-", "-")
    else:
        table.add_row("in force", *_thresholds_row(advice.current, advice.before))
    table.add_row("proposed", *_thresholds_row(advice.proposed, advice.after))
    console.print(table)
    for note in advice.notes:
        console.print(f"[yellow]{note}[/yellow]")
    scoring = f" that score {label}" if new else ""
    console.print(
        f"backtest over {moved.decisions} archived decisions{scoring} ({moved.days:.1f} days): "
        f"{moved.changed} change outcome"
    )
    for (before, after), count in sorted(moved.moves.items()):
        if before != after:
            console.print(f"  {before} → {after}: {count}")
    for outcome in ("review", "block"):
        now, then = moved.per_day(outcome, proposed=False), moved.per_day(outcome, proposed=True)
        console.print(f"  {outcome} per day: {now:.1f} → {then:.1f}")
    if write:
        options = f" --target-recall {target_recall}" if target_recall is not None else ""
        options += f" --queue {queue}" if new else ""
        moving = f"{label} moves from ignore to labels (queue {queue})\n" if label in policy.ignore else ""
        counted = f"counting for {label}: {start}\n" if start is not None else ""
        why = (
            f"proposed by `modstream quality suggest --label {label} --target-precision {target_precision}"
            f"{options}` at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n{moving}{counted}"
            f"from {advice.labelled} labelled decisions "
            f"({advice.positives} with {label}); backtest: {moved.changed} of {moved.decisions} decisions change\n"
            f"apply by moving this file to {'tenants/' + tenant + '.yaml' if tenant else 'default.yaml'}"
        )
        try:
            path = write_proposal(settings.policies_dir, tenant, label, advice.proposed, why, queue=queue)
        except PolicyError as exc:
            err.print(f"[red]the proposal is not a valid policy: {exc}[/red]")
            raise typer.Exit(1) from exc
        console.print(f"written: {path} (not applied: move it into place to apply it)")


def _warn(note: str) -> None:
    err.print(f"[yellow]{note}[/yellow]")


def _new_rule_queue(label: str, queue: str | None, policy_id: str, target_recall: float | None) -> str:
    """The queue of a new label's rule, checked as the policy checks it; a new label also needs
    a recall target (it has no review_at in force to keep). A refusal ends the command."""
    from pydantic import ValidationError
    from rich.markup import escape

    from modstream.policy.engine import LabelRule

    if target_recall is None:
        err.print(
            f"[red]{label!r} is not triggered by policy {policy_id} yet: give --target-recall "
            "(there is no review_at in force to keep)[/red]"
        )
        raise typer.Exit(2)
    chosen = queue if queue is not None else label.replace(".", "-")
    try:
        LabelRule(review_at=0.0, block_at=0.0, queue=chosen)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        hint = "" if queue is not None else f" (the default from the label {label!r}: give one with --queue)"
        err.print(f"[red]{escape(f'queue {chosen!r} refused: {problem}{hint}')}[/red]")
        raise typer.Exit(2) from exc
    return chosen


def _thresholds_row(at: "Thresholds", estimate: "Estimate") -> tuple[str, ...]:
    return (
        f"{at.review_at:.4f}",
        f"{at.block_at:.4f}",
        str(estimate.precision_at_block),
        str(estimate.recall_at_block),
        str(estimate.recall_at_review),
    )


@app.command()
def banks(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
) -> None:
    """How often reviewers agree with each hash bank entry it matched, and with each bank."""
    import asyncio

    from modstream.core.events import ReviewVerdict
    from modstream.core.kafka import read_records
    from modstream.quality.banks import bank_precision

    settings = get_settings()

    async def verdicts() -> list[ReviewVerdict]:
        return [v async for v in read_records(settings, settings.topic_review_verdicts, ReviewVerdict, False)]

    rows = bank_precision(asyncio.run(verdicts()))
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "bank": r.bank,
                        "entry_id": r.entry_id,
                        "confirmed": r.confirmed,
                        "disputed": r.disputed,
                        "precision": r.precision,
                        "interval_95": list(r.interval),
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        console.print("no verdicts on bank matches yet")
        return
    table = Table("bank", "entry", "confirmed", "disputed", "precision (95 % interval)")
    for r in rows:
        low, high = r.interval
        shown = "-" if r.precision is None else f"{r.precision:.2f} ({low:.2f}–{high:.2f})"
        table.add_row(r.bank, r.entry_id or "(whole bank)", str(r.confirmed), str(r.disputed), shown)
    console.print(table)
