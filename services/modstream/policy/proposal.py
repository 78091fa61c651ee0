"""A proposed tenant policy: new thresholds for one label, written beside the policies,
never into them.

A label the policy does not trigger on yet (one under ``ignore``, or one the model scores
that the policy does not name) gets a whole rule, queue included, and leaves ``ignore``.

Proposals go to ``<policies>/proposed/``, which the loader does not read: a person applies
one by moving it to ``tenants/<tenant>.yaml``, and the worker's hot reload (and the audit
log's ``policy_change``) take it from there, as for any edit.
"""

import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from modstream.core.events import Outcome, Thresholds
from modstream.policy.engine import LabelRule, Policy, evaluate
from modstream.policy.loader import DEFAULT_FILE, TENANT_FOLDER, PolicyError, load_policies

PROPOSED_FOLDER = "proposed"


def with_thresholds(policy: Policy, label: str, thresholds: Thresholds, queue: str | None = None) -> Policy:
    """``policy`` with ``label``'s thresholds (and ``queue``, when given) changed; a label it has
    no rule for needs a ``queue`` and gets a new rule, and leaves ``ignore`` if it was there."""
    if label in policy.labels:
        rule = policy.labels[label].model_copy(update=thresholds.model_dump())
        if queue is not None:
            rule = LabelRule(review_at=rule.review_at, block_at=rule.block_at, queue=queue)
    elif queue is None:
        raise ValueError(f"policy {policy.id} has no rule for {label!r}: a queue is needed to add one")
    else:
        rule = LabelRule(review_at=thresholds.review_at, block_at=thresholds.block_at, queue=queue)
    ignore = [name for name in policy.ignore if name != label]
    return policy.model_copy(update={"labels": {**policy.labels, label: rule}, "ignore": ignore})


def outcome_under(policy: Policy) -> Callable[[dict[str, float]], str]:
    """Scores -> the outcome ``policy`` gives them (audit sampling changes no outcome)."""

    def decide(scores: dict[str, float]) -> str:
        outcome: Outcome = evaluate(scores, policy, content_id="").decision
        return outcome.value

    return decide


def write_proposal(
    folder: Path, tenant: str | None, label: str, thresholds: Thresholds, why: str, *, queue: str | None = None
) -> Path:
    """The tenant's override (or the default policy) with the label's new thresholds (and
    ``queue``, when given: a label the policy has no rule for needs one) and a new version, as
    ``proposed/<tenant>-<version>.yaml``; checked by the loader's own rules. A label under the
    policy's ``ignore`` leaves it (for a tenant that inherits the default's list, the proposal
    writes the list without it)."""
    version = datetime.now(UTC).strftime("proposed-%Y-%m-%dT%H%M%S")
    source = folder / TENANT_FOLDER / f"{tenant}.yaml" if tenant else folder / DEFAULT_FILE
    raw = (yaml.safe_load(source.read_text()) or {}) if source.is_file() else {}
    rule = dict((raw.get("labels") or {}).get(label) or {})
    rule |= {"review_at": thresholds.review_at, "block_at": thresholds.block_at}
    if queue is not None:
        rule["queue"] = queue
    ignore = raw.get("ignore") if "ignore" in raw or not tenant else _default_ignore(folder)
    raw |= {"version": version, "labels": {**(raw.get("labels") or {}), label: rule}}
    if isinstance(ignore, list) and label in ignore:
        raw["ignore"] = [name for name in ignore if name != label]
    target = folder / PROPOSED_FOLDER / f"{tenant or 'default'}-{version}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    header = "".join(f"# {line}\n" for line in why.splitlines())
    target.write_text(header + yaml.safe_dump(raw, sort_keys=False))
    _check(folder, target, tenant)
    return target


def _default_ignore(folder: Path) -> object:
    """The default policy's ``ignore``, which a tenant without its own inherits."""
    default = folder / DEFAULT_FILE
    raw = yaml.safe_load(default.read_text()) if default.is_file() else None
    return raw.get("ignore") if isinstance(raw, dict) else None


def _check(folder: Path, proposal: Path, tenant: str | None) -> None:
    """Load the policies as they would be with the proposal moved into place: an invalid
    proposal (review_at above a tenant's block_at, say) fails here, not in the worker."""
    with tempfile.TemporaryDirectory() as scratch:
        trial = Path(scratch) / "policies"
        shutil.copytree(folder, trial, ignore=shutil.ignore_patterns(PROPOSED_FOLDER))
        placed = trial / TENANT_FOLDER / f"{tenant}.yaml" if tenant else trial / DEFAULT_FILE
        placed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(proposal, placed)
        try:
            load_policies(trial)
        except PolicyError as exc:
            proposal.unlink()
            raise PolicyError(str(exc).replace(str(placed), str(proposal))) from exc
