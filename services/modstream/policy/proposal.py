"""A proposed tenant policy: new thresholds for one label, written beside the policies,
never into them.

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
from modstream.policy.engine import Policy, evaluate
from modstream.policy.loader import DEFAULT_FILE, TENANT_FOLDER, PolicyError, load_policies

PROPOSED_FOLDER = "proposed"


def with_thresholds(policy: Policy, label: str, thresholds: Thresholds) -> Policy:
    if label not in policy.labels:
        raise ValueError(f"policy {policy.id} has no rule for {label!r}")
    rule = policy.labels[label].model_copy(update=thresholds.model_dump())
    return policy.model_copy(update={"labels": {**policy.labels, label: rule}})


def outcome_under(policy: Policy) -> Callable[[dict[str, float]], str]:
    """Scores -> the outcome ``policy`` gives them (audit sampling changes no outcome)."""

    def decide(scores: dict[str, float]) -> str:
        outcome: Outcome = evaluate(scores, policy, content_id="").decision
        return outcome.value

    return decide


def write_proposal(folder: Path, tenant: str | None, label: str, thresholds: Thresholds, why: str) -> Path:
    """The tenant's override (or the default policy) with the label's new thresholds and a
    new version, as ``proposed/<tenant>-<version>.yaml``; checked by the loader's own rules."""
    version = datetime.now(UTC).strftime("proposed-%Y-%m-%dT%H%M%S")
    source = folder / TENANT_FOLDER / f"{tenant}.yaml" if tenant else folder / DEFAULT_FILE
    raw = (yaml.safe_load(source.read_text()) or {}) if source.is_file() else {}
    rule = dict((raw.get("labels") or {}).get(label) or {})
    rule |= {"review_at": thresholds.review_at, "block_at": thresholds.block_at}
    raw |= {"version": version, "labels": {**(raw.get("labels") or {}), label: rule}}
    target = folder / PROPOSED_FOLDER / f"{tenant or 'default'}-{version}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    header = "".join(f"# {line}\n" for line in why.splitlines())
    target.write_text(header + yaml.safe_dump(raw, sort_keys=False))
    _check(folder, target, tenant)
    return target


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
