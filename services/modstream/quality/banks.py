"""How often reviewers agree with hash bank entries: per entry and per bank, a precision with
its Wilson interval, from the verdicts on items a bank entry matched.

A verdict confirms an entry when it agrees with the bank's action (a remove for a block or
review bank, an approve for an allow bank) and disputes it otherwise. Only first verdicts
count: a second review of the same image is the same item again.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from modstream.core.events import DECIDING_JOB_KINDS, BankAction, ReviewVerdict
from modstream.core.stats import wilson


@dataclass(frozen=True)
class BankPrecision:
    bank: str
    entry_id: str | None  # None: the whole bank
    confirmed: int
    disputed: int

    @property
    def n(self) -> int:
        return self.confirmed + self.disputed

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float]:
        low, high = wilson(self.precision or 0.0, self.n)
        return float(low), float(high)


def confirms(action: BankAction, verdict: str) -> bool:
    """Whether a reviewer's verdict agrees with what the bank's match did."""
    return (verdict == "approve") if action is BankAction.ALLOW else (verdict == "remove")


def bank_precision(verdicts: Iterable[ReviewVerdict]) -> list[BankPrecision]:
    """One row per entry with verdicts, and one per bank (``entry_id`` None), banks in name order."""
    entries: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for verdict in verdicts:
        match = verdict.bank_match
        if match is None or verdict.job_kind not in DECIDING_JOB_KINDS:
            continue
        entries[match.bank, match.entry_id][0 if confirms(match.action, verdict.verdict) else 1] += 1
    banks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (bank, _), (confirmed, disputed) in entries.items():
        banks[bank][0] += confirmed
        banks[bank][1] += disputed
    rows = []
    for bank in sorted(banks):
        rows.append(BankPrecision(bank, None, *banks[bank]))
        rows += [BankPrecision(b, e, *counts) for (b, e), counts in sorted(entries.items()) if b == bank]
    return rows
