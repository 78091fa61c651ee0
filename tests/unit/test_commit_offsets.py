"""Which offset the worker may commit: only the end of each partition's contiguous handled prefix."""

from collections import defaultdict
from types import SimpleNamespace

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from intervaltree import IntervalTree
from modstream.worker.offsets import Gap, Progress


def progress_with(partition: str, start: int | None, offsets: range) -> Progress[str]:
    progress: Progress[str] = Progress()
    progress.assign(partition, start)
    for offset in offsets:
        assert progress.handed(partition, offset) is None
    return progress


def test_an_offset_in_flight_holds_the_commit_while_later_ones_are_done() -> None:
    # committed 4; 4 still in flight; 5 and 6 done: a crash now must replay 4, so 4 is committed.
    progress = progress_with("p", 4, range(4, 7))
    progress.done("p", 5)
    progress.done("p", 6)
    assert progress.to_commit() == {}
    assert progress.in_flight("p") == 1
    progress.done("p", 4)
    assert progress.to_commit() == {"p": 7}


def test_faust_commits_past_the_offset_in_flight() -> None:
    """The reason the worker does not use faust's stream consumer (docs/architecture.md):
    its ``_new_offset`` with committed 4, 4 in flight and 5, 6 acknowledged answers 7. If this
    fails after an upgrade, faust fixed it; the worker's own consumer is still the one tested."""
    acked: defaultdict[str, list[int]] = defaultdict(list, {"p": [5, 6]})
    consumer = SimpleNamespace(
        _acked=acked,
        _gap=defaultdict(IntervalTree),
        _committed_offset={"p": 4},
        _acked_index=defaultdict(set, {"p": {5, 6}}),
    )
    assert FaustConsumer._new_offset(consumer, "p") == 7  # type: ignore[arg-type]


def test_nothing_done_yet_commits_nothing() -> None:
    progress = progress_with("p", None, range(0, 3))
    assert progress.to_commit() == {}
    progress.done("p", 1)
    assert progress.to_commit() == {}
    progress.done("p", 0)
    assert progress.to_commit() == {"p": 2}


def test_a_commit_is_offered_once_until_the_prefix_moves_again() -> None:
    progress = progress_with("p", 0, range(0, 2))
    progress.done("p", 0)
    assert progress.to_commit() == {"p": 1}
    progress.committed({"p": 1})
    assert progress.to_commit() == {}
    progress.done("p", 1)
    assert progress.to_commit() == {"p": 2}


def test_partitions_are_independent() -> None:
    progress: Progress[str] = Progress()
    progress.assign("a", 0)
    progress.assign("b", 10)
    progress.handed("a", 0)
    progress.handed("b", 10)
    progress.handed("b", 11)
    progress.done("b", 10)
    assert progress.to_commit() == {"b": 11}
    assert progress.in_flight() == 2


def test_a_hole_in_what_the_consumer_hands_out_is_reported() -> None:
    # A partition with no commit starts at its beginning: handing out 28 first skipped 0-27.
    progress: Progress[str] = Progress()
    progress.assign("p", 0)
    assert progress.handed("p", 28) == Gap("p", 0, 28)
    assert progress.handed("p", 29) is None
    assert progress.handed("p", 31) == Gap("p", 30, 31)


def test_holes_in_the_topic_itself_commit_past_them() -> None:
    # Only offsets handed out count: a compacted offset (2) never blocks the commit.
    progress: Progress[str] = Progress()
    progress.assign("p", None)
    for offset in (0, 1, 3):
        progress.handed("p", offset)
        progress.done("p", offset)
    assert progress.to_commit() == {"p": 4}


def test_an_offset_handed_out_twice_is_refused() -> None:
    progress = progress_with("p", 0, range(0, 2))
    with pytest.raises(ValueError, match="handed out again"):
        progress.handed("p", 1)


def test_a_revoked_partition_forgets_its_work_and_late_completions() -> None:
    progress = progress_with("p", 0, range(0, 3))
    progress.done("p", 0)
    progress.revoke("p")
    progress.done("p", 1)  # a record that finished after the partition left: ignored
    assert progress.to_commit() == {}
    assert not progress.owns("p")
    progress.assign("p", 1)  # back again, from the group's commit
    assert progress.handed("p", 1) is None


def test_records_handed_out_before_the_assignment_is_announced_are_tracked() -> None:
    # aiokafka may return a new partition's records while the listener still asks for its
    # commit: they count, and the assignment then checks the first against where it starts.
    progress: Progress[str] = Progress()
    assert progress.handed("p", 0) is None
    progress.done("p", 0)
    assert progress.assign("p", 0) is None
    assert progress.to_commit() == {"p": 1}
    late: Progress[str] = Progress()
    late.handed("q", 10)
    assert late.assign("q", 4) == Gap("q", 4, 10)
