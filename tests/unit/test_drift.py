"""Drift tallies, the reference rule and the audit-rate rule (pure)."""

import random
from datetime import UTC, datetime, timedelta

import numpy as np
from modstream.core.events import Outcome
from modstream.quality.drift import BLOCK, DECISIONS, REVIEW, AuditRule, Reference, Series, drift, tally, window_of

from tests.archive import decision

AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_a_tally_counts_each_label_by_window_and_skips_what_is_not_automatic() -> None:
    rng = random.Random(1)
    decisions = [decision(rng, AT + timedelta(minutes=m), nsfw=s) for m, s in ((1, 0.1), (2, 0.5), (3, 0.9), (61, 0.2))]
    human = decision(rng, AT).model_copy(update={"source": "human"})
    error = decision(rng, AT).model_copy(update={"decision": Outcome.ERROR})
    unscored = decision(rng, AT).model_copy(update={"model": None})
    counted = tally([*decisions, human, error, unscored], window_seconds=3600)
    nsfw = Series("t", "nsfw", "1")
    first, second = window_of(AT, 3600), window_of(AT + timedelta(minutes=61), 3600)
    assert set(counted.counts) == {
        (nsfw, first),
        (nsfw, second),
        (Series("t", "nsfl", "1"), first),
        (Series("t", "nsfl", "1"), second),
    }
    slots = counted.counts[(nsfw, first)]
    assert (slots[DECISIONS], slots[REVIEW], slots[BLOCK]) == (3, 2, 1)  # review_at 0.4, block_at 0.85
    assert slots[2] == slots[10] == slots[18] == 1  # bins of 0.1, 0.5, 0.9


def test_drift_is_zero_for_the_same_shape_and_large_for_a_shift() -> None:
    reference = np.zeros(23, dtype=np.int64)
    reference[:20] = np.arange(20, 0, -1) * 10
    reference[DECISIONS], reference[REVIEW], reference[BLOCK] = reference[:20].sum(), 100, 10
    same = reference * 3
    assert drift(reference, same).psi == 0.0 and drift(reference, same).js == 0.0
    assert drift(reference, same).review_rate_change == 0.0
    shifted = reference.copy()
    shifted[:20] = reference[:20][::-1]
    shifted[REVIEW] = 1000
    found = drift(reference, shifted)
    assert found.psi > 0.2 and 0 < found.js <= 1 and found.review_rate_change > 0.3


def test_the_reference_is_the_first_windows_or_a_pinned_period() -> None:
    first = Reference(windows=3)
    assert [first.holds(w, 10, 60) for w in (9, 10, 12, 13)] == [False, True, True, False]
    assert [first.complete(w, 10, 60) for w in (12, 13)] == [False, True]
    pinned = Reference(windows=3, since=AT, until=AT + timedelta(hours=2))
    hour = window_of(AT, 3600)
    assert [pinned.holds(hour + i, 0, 3600) for i in (-1, 0, 1, 2)] == [False, True, True, False]
    assert [pinned.complete(hour + i, 0, 3600) for i in (1, 2)] == [False, True]


def test_the_audit_rate_rises_at_the_alert_and_falls_only_when_calm() -> None:
    rule = AuditRule(alert=0.2, calm=0.1)
    raised = False
    states = []
    for psi in (0.05, 0.15, 0.25, 0.15, 0.12, 0.08, 0.15):
        raised = rule.raised_after(psi, raised)
        states.append(raised)
    assert states == [False, False, True, True, True, False, False]
