"""The policies a running worker uses, reloaded when their files change.

A changed file is loaded and checked in full before it is used; when it is invalid the
worker keeps the policies it had and says why, so a typo never stops moderation.
"""

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from modstream.policy.engine import Policy
from modstream.policy.loader import PolicyError, load_policies

log = logging.getLogger("modstream.policy")
T = TypeVar("T")
Fingerprint = tuple[tuple[str, int, int], ...]


class PolicyStore:
    def __init__(self, folder: Path, model_labels: Sequence[str] | None) -> None:
        self.folder = folder
        self.model_labels = list(model_labels) if model_labels is not None else None
        self._fingerprint = self._read_fingerprint()
        self.current = load_policies(folder, self.model_labels)
        self._looked_at = time.monotonic()

    def for_tenant(self, tenant: str, fresh_within: float = 5.0) -> Policy:
        """The tenant's policy, its files looked at again at most every ``fresh_within`` seconds."""
        if time.monotonic() - self._looked_at >= fresh_within:
            self.refresh()
        return self.current.for_tenant(tenant)

    def refresh(self) -> dict[str, str] | None:
        """Reload if any policy file changed; the versions that changed, when new ones are in use."""
        self._looked_at = time.monotonic()
        fingerprint = self._read_fingerprint()
        if fingerprint == self._fingerprint:
            return None
        self._fingerprint = fingerprint
        try:
            fresh = load_policies(self.folder, self.model_labels)
        except PolicyError as exc:
            log.error("policy change refused, keeping the previous policies", extra={"error": str(exc)})
            return None
        old, self.current = self.current, fresh
        log.warning("policies reloaded", extra={"versions": fresh.versions, "previous": old.versions})
        gone = {tenant: "(removed)" for tenant in old.versions.keys() - fresh.versions.keys()}
        return {k: v for k, v in fresh.versions.items() if old.versions.get(k) != v} | gone

    def observe_model_labels(self, labels: Sequence[str]) -> bool:
        """Note the labels the serving model now answers with; True when they changed.

        Later policy files are checked against these. Decisions meanwhile go to review
        for every label the policy and the model disagree on (see engine.label_drift).
        """
        if self.model_labels is not None and sorted(labels) == sorted(self.model_labels):
            return False
        previous, self.model_labels = self.model_labels, list(labels)
        drift = {t: label_drift_names(p, labels) for t, p in self._all().items()}
        log.warning(
            "the serving model's labels changed",
            extra={
                "labels": list(labels),
                "previous": previous,
                "policy_disagrees": {t: d for t, d in drift.items() if d},
            },
        )
        return True

    def _all(self) -> dict[str, Policy]:
        return {"default": self.current.default, **self.current.tenants}

    def _read_fingerprint(self) -> Fingerprint:
        files = [self.folder / "default.yaml", *sorted((self.folder / "tenants").glob("*.yaml"))]
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file())


def label_drift_names(policy: Policy, labels: Sequence[str]) -> list[str]:
    return sorted((set(labels) - policy.known_labels()) | (set(policy.labels) - policy.labels_given(labels)))


class Sections(Generic[T]):
    """One section of each tenant's policy for a process that must run whatever the files say
    (the dashboard): the files are read when first asked, then kept fresh as ``PolicyStore``
    does. While they have never been valid, ``fallback`` answers, the error is logged, and the
    files are read again at most every ``retry_seconds``."""

    def __init__(self, folder: Path, section: Callable[[Policy], T], fallback: T, retry_seconds: float = 30.0) -> None:
        self._folder, self._section, self._fallback, self._retry = folder, section, fallback, retry_seconds
        self._store: PolicyStore | None = None
        self._tried = -retry_seconds

    def __call__(self, tenant: str) -> T:
        if self._store is None and time.monotonic() - self._tried >= self._retry:
            self._tried = time.monotonic()
            try:
                self._store = PolicyStore(self._folder, None)
            except PolicyError as exc:
                log.error("policies unreadable, using the defaults until they are fixed", extra={"error": str(exc)})
        return self._fallback if self._store is None else self._section(self._store.for_tenant(tenant))

    def tenants(self) -> list[str]:
        """The tenants with a policy file of their own (others have the default's section)."""
        self("")  # reads or refreshes the files
        return [] if self._store is None else sorted(self._store.current.tenants)
