"""How far the worker may commit on each partition: pure, no I/O.

Records are handled many at once and finish in any order, so the offset to commit for a
partition is the one after the last record of its *contiguous* handled prefix: with 4
still in flight and 5 and 6 done, the commit stays at 4 (faust-streaming 0.15.3 commits 7
there and loses 4 on a crash; docs/architecture.md). Only records this worker was handed
count, never arithmetic on offsets, so a topic with holes (compaction, transaction
markers) commits correctly; a hole in what the consumer hands out is reported, since on
the uploads topic it means records were skipped.
"""

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)  # a topic-partition, whatever the client calls it


@dataclass(frozen=True)
class Gap:
    """Offsets the consumer skipped: it handed out ``got`` when ``expected`` was next."""

    partition: object
    expected: int
    got: int


@dataclass
class _Partition:
    handed: deque[int] = field(default_factory=deque)  # in the order received, not yet committable
    done: set[int] = field(default_factory=set)
    next_expected: int | None = None
    first_handed: int | None = None
    commit_at: int | None = None  # the offset to commit (the next one to read), once known
    committed: int | None = None


class Progress(Generic[P]):
    """The records handed out per assigned partition, which are done, and the commit they free."""

    def __init__(self) -> None:
        self._partitions: dict[P, _Partition] = {}

    def assign(self, partition: P, start: int | None = None) -> Gap | None:
        """Track ``partition``, whose reading starts at ``start`` (the group's commit, else the
        partition's first offset; None: unknown). The consumer may hand out records of a new
        partition before it is told of the assignment: those were tracked already, and the
        first of them is checked against ``start`` here."""
        state = self._partitions.get(partition)
        if state is None:
            self._partitions[partition] = _Partition(next_expected=start, committed=start)
            return None
        if state.committed is None:
            state.committed = start
        first = state.first_handed
        if start is not None and first is not None and first != start:
            return Gap(partition, start, first)
        return None

    def revoke(self, partition: P) -> None:
        """Forget ``partition``: records of it still being handled no longer count here."""
        self._partitions.pop(partition, None)

    def owns(self, partition: P) -> bool:
        return partition in self._partitions

    def handed(self, partition: P, offset: int) -> Gap | None:
        """The consumer handed out ``offset``: it is in flight now. Returns the gap before it
        when it does not follow the previous one. A partition not assigned yet is tracked
        from here (its assignment is being announced)."""
        state = self._partitions.setdefault(partition, _Partition())
        if state.handed and offset <= state.handed[-1]:
            raise ValueError(f"{partition}: offset {offset} handed out again (last {state.handed[-1]})")
        gap = None
        if state.next_expected is not None and offset != state.next_expected:
            gap = Gap(partition, state.next_expected, offset)
        if state.first_handed is None:
            state.first_handed = offset
        state.handed.append(offset)
        state.next_expected = offset + 1
        return gap

    def done(self, partition: P, offset: int) -> None:
        """``offset`` is handled to the end; ignored when the partition is no longer ours."""
        state = self._partitions.get(partition)
        if state is None:
            return
        state.done.add(offset)
        while state.handed and state.handed[0] in state.done:
            finished = state.handed.popleft()
            state.done.discard(finished)
            state.commit_at = finished + 1

    def in_flight(self, partition: P | None = None) -> int:
        """Records handed out and not yet done, on ``partition`` or on all of them."""
        states = self._partitions.values() if partition is None else [self._partitions[partition]]
        return sum(len(s.handed) - len(s.done) for s in states)

    def to_commit(self) -> dict[P, int]:
        """Each partition whose contiguous handled prefix moved past its last commit, with the
        offset to commit (the next one to read)."""
        return {
            partition: state.commit_at
            for partition, state in self._partitions.items()
            if state.commit_at is not None and (state.committed is None or state.commit_at > state.committed)
        }

    def committed(self, offsets: dict[P, int]) -> None:
        for partition, offset in offsets.items():
            if (state := self._partitions.get(partition)) is not None:
                state.committed = max(offset, state.committed or 0)

    def partitions(self) -> list[P]:
        return list(self._partitions)
