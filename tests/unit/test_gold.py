"""Gold items' arithmetic: a verdict judged per label against the answer, accuracy pooled per
reviewer or per label with Wilson intervals, and when it is too low to trust."""

from modstream.core.gold import VERDICT, GoldAnswer, Tally, accuracy, by_label, by_reviewer, judged
from modstream.core.review_rules import GoldRules


def test_a_verdict_is_judged_on_the_verdict_and_every_label_anyone_named() -> None:
    answer = GoldAnswer("remove", frozenset({"sexual.explicit", "sexual.any"}))
    got = judged(answer, "remove", ["sexual.explicit", "drugs"], triggered=["sexual.nsfw"])
    assert got == {
        VERDICT: True,
        "sexual.explicit": True,  # both say it applies
        "sexual.any": False,  # the answer names it, the reviewer left it out
        "drugs": False,  # the reviewer named it, the answer does not
        "sexual.nsfw": True,  # it triggered; neither says it applies
    }
    assert judged(answer, "approve", sorted(answer.labels), [])[VERDICT] is False


def test_accuracy_pools_answers_per_reviewer_or_label_with_a_wilson_interval() -> None:
    tallies = [
        Tally("remy", "t1", "drugs", 10, 9),
        Tally("remy", "t2", "drugs", 10, 5),
        Tally("rita", "t1", "drugs", 4, 4),
    ]
    remy = next(a for a in by_reviewer(tallies) if a.name == "remy")
    assert (remy.answers, remy.right, round(remy.share, 2)) == (20, 14, 0.7)
    assert remy.low < 0.7 < remy.high and str(remy).startswith("70% [")
    only_t1 = by_reviewer(tallies, tenant="t1")
    assert [(a.name, a.answers) for a in only_t1] == [("remy", 10), ("rita", 4)]
    assert by_label(tallies)["drugs"].answers == 24
    assert accuracy("x", "y", 0, 0).share == 0.0 and (accuracy("x", "y", 0, 0).low, accuracy("x", "y", 0, 0).high) == (
        0.0,
        1.0,
    )


def test_too_low_only_over_enough_answers() -> None:
    rules = GoldRules()  # 80 %, at least 20
    assert accuracy("remy", "drugs", 20, 15).below(rules.min_accuracy, rules.min_answers)
    assert not accuracy("remy", "drugs", 19, 0).below(rules.min_accuracy, rules.min_answers)
    assert not accuracy("remy", "drugs", 20, 16).below(rules.min_accuracy, rules.min_answers)
    assert GoldRules(queues={"gore": 0.1}).rate_of("gore") == 0.1 and GoldRules().rate_of("other") == 0.02


def test_the_alerts_gauge_holds_each_reviewer_against_each_tenants_own_threshold() -> None:
    from modstream.review import gauges

    tallies = [
        Tally("remy", "strict", VERDICT, 30, 26),  # 87 %: under strict's 90 %
        Tally("remy", "relaxed", VERDICT, 30, 26),  # over relaxed's 80 %
        Tally("rita", "strict", VERDICT, 10, 5),  # 50 %, but over too few answers
        Tally("rita", "strict", "drugs", 30, 0),  # a label: the alert is on verdicts
    ]
    rules = {"strict": GoldRules(min_accuracy=0.9), "relaxed": GoldRules()}
    gauges.remember_gold(tallies, rules.__getitem__)
    below = {(r["tenant"], r["reviewer"]): v for v, r in gauges._gold_readings(below=True)}
    assert below == {("strict", "remy"): 1.0, ("relaxed", "remy"): 0.0, ("strict", "rita"): 0.0}
    shares = {(r["tenant"], r["reviewer"]): round(v, 2) for v, r in gauges._gold_readings(below=False)}
    assert shares == {("strict", "remy"): 0.87, ("relaxed", "remy"): 0.87, ("strict", "rita"): 0.5}
