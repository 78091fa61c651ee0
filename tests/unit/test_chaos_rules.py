"""The chaos benchmark's pure rules: which faults when, what recovery means, what a Redis kill
cost and what the review jobs must be. The run itself is tests/faults/test_chaos.py."""

from collections import Counter

from modstream.bench.chaos import KINDS, fault_plan, recovery, redis_losses, review_check, watched


def test_the_plan_is_seeded_one_fault_a_slot_and_every_kind_comes_once_a_round() -> None:
    plan = fault_plan(10, seed=20)
    assert plan == fault_plan(10, seed=20) != fault_plan(10, seed=21)
    assert [at for at, _ in plan] == [15.0 + 30 * i for i in range(20)]
    kinds = [kind for _, kind in plan]
    for start in range(0, 18, 6):
        assert sorted(kinds[start : start + 6]) == sorted(KINDS)
    assert min(Counter(kinds).values()) == 3
    # Three minutes: six faults, each kind once.
    assert sorted(kind for _, kind in fault_plan(3, seed=1)) == sorted(KINDS)
    assert len(fault_plan(0.5, seed=1)) == 1


def test_recovery_counts_from_the_kill() -> None:
    killed, answered = 100.0, 104.0
    decisions = [99.0, 100.5, 101.0, 105.0, 105.5, 106.0, 112.0]
    # First decision after it answered: 105 (5 s); the last of the uploads waiting at the kill
    # decided at 106 (6 s); the longest time without a decision until then: 101 -> 105.
    assert recovery(killed, answered, decisions, [100.5, 106.0, 105.0]) == (5.0, 6.0, 4.0)
    # One waiting upload never decided: not caught up; the gap runs to the last decision.
    assert recovery(killed, answered, decisions, [100.5, None]) == (5.0, None, 6.0)
    # No decision at all after the kill: no gap to tell.
    assert recovery(killed, answered, [99.0], [None]) == (None, None, None)
    # Nothing waited: caught up at the kill.
    assert recovery(killed, answered, [101.0], []) == (None, 0.0, 0.0)


def test_a_redis_kill_loses_what_was_there_before_and_is_gone_after() -> None:
    before = {"a": "decision-a", "b": "lease:1", "c": "lease:2", "d": None}
    after = {"a": None, "b": "decision-b", "c": None, "d": "lease:3"}
    losses = redis_losses(before, after, {"j1": "q", "j2": "q"}, {"j1": "q"})
    assert losses == {
        "marks_before": 1,
        "marks_lost": 1,
        "leases_before": 2,
        "leases_lost": 1,  # b became a mark: progress, not a loss
        "jobs_before": 2,
        "jobs_lost": 1,
    }


def test_every_review_decision_needs_its_one_job_in_its_queue_and_no_other_event_has_one() -> None:
    review = {"e1": {"demo-review"}, "e2": {"audit"}, "e3": {"demo-review"}}
    jobs = {"e1": "demo-review", "e2": "demo-review", "e4": "audit"}
    check = review_check(review, jobs, ["e1", "e2", "e3", "e4", "e5"])
    assert (check["review_decisions"], check["jobs"], check["missing"], check["wrong_queue"], check["unexpected"]) == (
        3,
        2,
        1,
        1,
        1,
    )
    assert (check["missing_events"], check["wrong_queue_events"], check["unexpected_events"]) == (
        ["e3"],
        ["e2"],
        ["e4"],
    )


def test_a_server_that_died_while_a_fault_ran_stays_watched_under_its_old_pid() -> None:
    before = {"triton": 10, "worker": 11, "worker-2": 12}
    running = {"worker": 21, "worker-2": 12, "kafka": 13}  # Triton crashed; the worker was restarted
    names = ("kafka", "triton", "worker", "worker-2")
    assert watched(before, running, names) == {"triton": 10, "worker": 21, "worker-2": 12, "kafka": 13}
    assert watched({}, {"dashboard": 5}, names) == {}
