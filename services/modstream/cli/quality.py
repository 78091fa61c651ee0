"""``modstream quality …``: how right the decisions are, from the archive and reviewers' verdicts."""

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modstream.cli.console import as_utc, console, err, get_settings

if TYPE_CHECKING:
    import duckdb

    from modstream.core.events import Thresholds
    from modstream.core.evidence import Period
    from modstream.core.gold import Accuracy, Tally
    from modstream.core.review_rules import GoldRules
    from modstream.core.settings import Settings
    from modstream.quality.advice import Estimate
    from modstream.quality.suggest import Suggestion

app = typer.Typer(help="Per-label quality from reviewers' verdicts, and threshold advice.", no_args_is_help=True)

TenantOption = Annotated[str | None, typer.Option(help="only this tenant's decisions (and per tenant)")]
SinceOption = Annotated[datetime | None, typer.Option(help="from this time (UTC), e.g. 2026-11-28 or 2026-11-28T06:00")]
UntilOption = Annotated[datetime | None, typer.Option(help="before this time (UTC)")]
VersionOption = Annotated[str | None, typer.Option("--model-version", help="only decisions of this model version")]


def _open(settings: "Settings", period: "Period") -> "duckdb.DuckDBPyConnection":
    from modstream.core.lake import open_archive

    since, until = period.days()
    return open_archive(
        settings,
        since=since,
        until=until,
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
    from modstream.core.evidence import Period
    from modstream.quality.archived import measure

    settings = get_settings()
    period = Period(tenant=tenant, model_version=model_version, since=as_utc(since), until=as_utc(until))
    with console.status("reading the archive…"):
        measured = measure(settings, period, only_label=label)
    sample, result, reviewers = measured.sample, measured.report, measured.reviewers
    gold, gold_problem = _gold_by_label(settings, tenant)
    if as_json:
        whole = {**result.to_dict(), "decisions": len(sample), "set_aside": sample.set_aside}
        on_gold = {label: asdict(accuracy) for label, accuracy in gold.items()}
        print(json.dumps({**whole, "reviewers": reviewers.to_dict(), "gold": on_gold}, default=str, indent=2))
    if not len(sample):
        # The same exit status with --json (which printed the empty report): no data is a failure.
        err.print(f"[yellow]no automatic decision in the archive ({settings.archive_bucket}) for this period[/yellow]")
        raise typer.Exit(1)
    if as_json:
        return
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
    if aside := {reason: n for reason, n in sample.set_aside.items() if n}:
        reasons = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in aside.items())
        console.print(
            f"[yellow]verdicts kept out of the estimates: {reasons} "
            "(before their decision or in the future; on an allow or block never audit-sampled; "
            "naming no archived decision)[/yellow]"
        )
    console.print(f"reviewer agreement, from {reviewers.pairs} blind double reviews (Cohen's kappa):")
    for name, kappa in (*reviewers.by_label.items(), *reviewers.by_reviewer_pair.items()):
        console.print(f"  {name}: {kappa}")
    for reviewer, share in reviewers.with_majority.items():
        console.print(f"  {reviewer} agrees with the others' majority: {share}")
    _print_gold(gold, gold_problem, settings)


def _gold_by_label(settings: "Settings", tenant: str | None) -> "tuple[dict[str, Accuracy], str | None]":
    """Reviewers' accuracy on gold items per label (the review room's tallies, in Redis), or why
    it could not be read: the report stands without it."""
    import asyncio

    import redis.asyncio as aioredis
    import redis.exceptions

    from modstream.core.gold import by_label
    from modstream.review.gold import GoldBook

    async def read() -> "list[Tally]":
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            return await GoldBook(client).tallies()
        finally:
            await client.aclose()

    try:
        return by_label(asyncio.run(read()), tenant), None
    except (OSError, redis.exceptions.RedisError) as exc:
        return {}, f"reviewers' accuracy on gold items could not be read from Redis ({settings.redis_url}): {exc}"


def _print_gold(gold: "dict[str, Accuracy]", problem: str | None, settings: "Settings") -> None:
    if problem:
        err.print(f"[yellow]{problem}[/yellow]")
        return
    if not gold:
        console.print("no verdict on a gold item yet")
        return
    rules = _default_gold_rules(settings)
    console.print("reviewers on gold items (right, with the 95 % interval):")
    for label, accuracy in gold.items():
        unreliable = accuracy.below(rules.min_accuracy, rules.min_answers)
        warning = f" [red]unreliable: under {rules.min_accuracy:.0%}, its precision and recall rest on them[/red]"
        console.print(f"  {label}: {accuracy}{warning if unreliable else ''}")


def _default_gold_rules(settings: "Settings") -> "GoldRules":
    from modstream.policy.loader import PolicyError, load_policies

    try:
        return load_policies(settings.policies_dir).default.review.gold
    except PolicyError:
        from modstream.core.review_rules import GoldRules

        return GoldRules()


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
    from functools import partial

    from rich.markup import escape

    from modstream.core.evidence import Period
    from modstream.policy.loader import PolicyError, load_policies
    from modstream.policy.proposal import outcome_under, with_thresholds, write_proposal
    from modstream.quality.advice import NoAdvice
    from modstream.quality.suggest import Policies, Refused, Request, Sources, registry
    from modstream.quality.suggest import suggest as suggest_thresholds

    settings = get_settings()
    try:
        policies = load_policies(settings.policies_dir)
    except PolicyError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    policy = policies.for_tenant(tenant) if tenant else policies.default
    period = Period(tenant=tenant, model_version=model_version, since=as_utc(since), until=as_utc(until))
    request = Request(label, target_precision, target_recall, queue=queue, period=period)
    sources = Sources(archive=partial(_open, settings), defined_at=registry(settings, _warn))
    try:
        with console.status("reading the archive…"):
            found = suggest_thresholds(
                request, Policies(policy, outcome_under, with_thresholds), sources, note=console.print
            )
    except Refused as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    except NoAdvice as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    _show(found)
    if write:
        try:
            path = write_proposal(
                settings.policies_dir,
                tenant,
                label,
                found.advice.proposed,
                found.why(datetime.now(UTC)),
                queue=found.queue,
            )
        except PolicyError as exc:
            err.print(f"[red]the proposal is not a valid policy: {exc}[/red]")
            raise typer.Exit(1) from exc
        console.print(f"written: {path} (not applied: move it into place to apply it)")


def _warn(note: str) -> None:
    err.print(f"[yellow]{note}[/yellow]")


def _show(found: "Suggestion") -> None:
    label, advice, moved = found.request.label, found.advice, found.backtest
    console.print(
        f"{label} for {found.policy_id} ({found.policy_version}), from {advice.labelled} labelled decisions "
        f"({advice.positives} with {label}) of {found.decisions}:"
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
    scoring = f" that score {label}" if found.new_rule else ""
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
