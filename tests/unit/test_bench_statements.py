"""``modstream bench --statements``: every statement built is sent and counted, and the report
holds the rates it prints."""

from modstream.bench.statements import RULES, restrictions, run_statements_bench
from modstream.statements.build import statement_for


def test_the_bench_builds_a_statement_for_every_restriction_on_each_path() -> None:
    paths = {statement_for(d, RULES).path for d in restrictions(8)}  # type: ignore[union-attr]
    assert paths == {"model", "model_then_human", "human"}


def test_the_bench_reports_rates_and_their_ratio() -> None:
    report = run_statements_bench(300, runs=1, on_stage=lambda _: None)
    assert report["statements"] == 300 and report["batch"] == 100
    assert report["built_per_second"] > 0 and report["submitted_per_second"] > 0 and report["bare_post_per_second"] > 0
    ratio = report["submitted_per_second"] / report["bare_post_per_second"]
    assert report["submitter_vs_bare"] > 0 and abs(report["submitter_vs_bare"] - ratio) < 0.01
