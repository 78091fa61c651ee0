"""Policy files -> a validated set of policies: the default and one per tenant override.

Layout: ``<folder>/default.yaml`` and ``<folder>/tenants/<tenant>.yaml``. An override
names its own version and changes only what it lists; the rest comes from the default.
Every error names the file, the tenant and the field.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from modstream.core.events import Tenant
from modstream.policy.engine import TEXT_READ, Policy

DEFAULT_FILE = "default.yaml"
TENANT_FOLDER = "tenants"
_TENANT: TypeAdapter[str] = TypeAdapter(Tenant)
# Sections an override changes label by label, and within a label field by field.
_BY_LABEL = ("labels", "text")
# Sections an override changes key by key (review: its severe labels, due targets, limits).
_BY_KEY = ("review",)


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the file, tenant and field."""


@dataclass(frozen=True)
class PolicySet:
    default: Policy
    tenants: dict[str, Policy] = field(default_factory=dict)

    def for_tenant(self, tenant: str) -> Policy:
        return self.tenants.get(tenant, self.default)

    @property
    def versions(self) -> dict[str, str]:
        return {"default": self.default.version} | {t: p.version for t, p in self.tenants.items()}


def load_policies(folder: Path, model_labels: Sequence[str] | None = None) -> PolicySet:
    """Read and check every policy file; ``model_labels`` (when known) must cover their labels."""
    default_file = folder / DEFAULT_FILE
    default_raw = _read(default_file, "default")
    default = _validated(default_raw, default_file, "default", model_labels)
    tenants = {}
    for path in sorted((folder / TENANT_FOLDER).glob("*.yaml")):
        tenant = path.stem
        if not _is_tenant(tenant):
            raise PolicyError(f"{path}: tenant {tenant!r}: the file name is not a valid tenant id")
        override = _read(path, tenant)
        merged = _merge(default_raw, override) | {"id": f"tenant:{tenant}"}
        tenants[tenant] = _validated(merged, path, tenant, model_labels)
    return PolicySet(default=default, tenants=tenants)


def _read(path: Path, tenant: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise PolicyError(f"{path}: tenant {tenant}: no such policy file") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: tenant {tenant}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: tenant {tenant}: a policy is a mapping, not {type(data).__name__}")
    return data


def _merge(default: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = default | {k: v for k, v in override.items() if k not in _BY_LABEL}
    for section in _BY_LABEL:
        rules = dict(default.get(section) or {})
        for label, rule in (override.get(section) or {}).items():
            rules[label] = (rules.get(label) or {}) | (rule or {}) if isinstance(rule, dict) else rule
        merged[section] = rules
    for section in _BY_KEY:
        if section in default or section in override:
            merged[section] = (default.get(section) or {}) | (override.get(section) or {})
    return merged


def _validated(raw: dict[str, Any], path: Path, tenant: str, model_labels: Sequence[str] | None) -> Policy:
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise PolicyError(f"{path}: tenant {tenant}: {problems}") from exc
    if model_labels is not None:
        # Text rules' labels are scored in the worker from the text read, when the model reads text.
        unknown = sorted((set(policy.labels) | set(policy.ignore)) - policy.labels_given(model_labels))
        if unknown:
            field = f"labels.{unknown[0]}" if unknown[0] in policy.labels else "ignore"
            needs = (
                f"; text rules need a model that reads text ({TEXT_READ})" if unknown[0] in policy.text.labels() else ""
            )
            raise PolicyError(
                f"{path}: tenant {tenant}: {field}: the model has no label {unknown[0]!r} "
                f"(its labels: {', '.join(model_labels)}{needs})"
            )
    return policy


def _is_tenant(name: str) -> bool:
    try:
        _TENANT.validate_python(name)
    except ValidationError:
        return False
    return True
