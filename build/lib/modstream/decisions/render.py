"""How a decision looks in a terminal: one table row, or one JSON line."""

from rich.table import Table
from rich.text import Text

from modstream.core.events import ModerationDecision, Outcome

STYLE = {Outcome.ALLOW: "green", Outcome.REVIEW: "yellow", Outcome.BLOCK: "bold red", Outcome.ERROR: "magenta"}
COLUMNS = ("decided", "tenant", "image", "decision", "scores", "why", "model", "latency")


def decisions_table() -> Table:
    table = Table(show_lines=False, expand=False)
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    return table


def decision_cells(decision: ModerationDecision, image: str | None = None) -> list[str | Text]:
    """``image`` names the image for people (a file name, say); the object key otherwise."""
    scores = " ".join(f"{label} {score:.2f}" for label, score in sorted(decision.scores.items()))
    if decision.error is not None:
        why = f"{decision.error.reason.value}: {decision.error.message}"
    else:
        why = ", ".join(f"{t.label}≥{t.threshold:g}" for t in decision.triggered) or "-"
    model = f"{decision.model.name}:{decision.model.version}" if decision.model else "-"
    return [
        decision.occurred_at.strftime("%H:%M:%S"),
        decision.tenant,
        image or decision.key,
        Text(decision.decision.value, style=STYLE[decision.decision]),
        scores or "-",
        why,
        model,
        f"{decision.latency_ms:.0f} ms",
    ]


def decision_json(decision: ModerationDecision) -> str:
    return decision.model_dump_json()
