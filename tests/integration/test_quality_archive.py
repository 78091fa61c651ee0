"""The quality report read from a real archive: what the archiver wrote, as the CLI reads it."""

import asyncio
import json
import os
import subprocess
import sys

import pytest
from modstream.core.archive import open_archive
from modstream.core.events import ReviewVerdict
from modstream.core.settings import Settings
from modstream.quality.agreement import Pair, agreement_report
from modstream.quality.archived import Period, load_sample, verdict_pairs
from modstream.quality.report import quality_report

from tests.archive import Produce, archive_in_process, private_archive, traffic

pytestmark = pytest.mark.integration


async def test_the_report_and_the_agreement_come_from_what_was_archived(stack_settings: Settings) -> None:
    settings = (await private_archive(stack_settings)).model_copy(
        update={"archive_flush_seconds": 1.0, "archive_web_port": 0}
    )
    records = list(traffic(600, seed=2))
    producer = Produce(settings)
    for table, record in records:
        producer.record(table, record)
    producer.flush()
    await archive_in_process(settings)

    verdicts = [r for t, r in records if t == "verdicts" and isinstance(r, ReviewVerdict)]
    firsts = {v.automatic_decision_id: v for v in verdicts if v.job_kind != "second_review"}
    expected_pairs = [
        Pair(
            item=s.automatic_decision_id,
            first_reviewer=firsts[s.automatic_decision_id].reviewer,
            second_reviewer=s.reviewer,
            first_labels=frozenset(firsts[s.automatic_decision_id].labels),
            second_labels=frozenset(s.labels),
            first_verdict=firsts[s.automatic_decision_id].verdict,
            second_verdict=s.verdict,
        )
        for s in verdicts
        if s.job_kind == "second_review"
    ]
    with open_archive(settings) as archive:
        sample = load_sample(archive, Period())
        pairs = verdict_pairs(archive, Period())
    assert len(sample) == 600 and int(sample.labelled.sum()) == len(firsts)
    assert sorted(pairs, key=lambda p: p.item) == sorted(expected_pairs, key=lambda p: p.item)
    assert len(pairs) >= 30  # enough for a kappa

    # The CLI prints the same numbers from the same files.
    env = {**os.environ, **settings.as_env()}
    command = [sys.executable, "-m", "modstream.cli", "quality", "report", "--json"]
    done = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    expected = quality_report(sample).to_dict()
    assert json.loads(json.dumps(expected, default=str)) == {k: printed[k] for k in expected}
    kappa = agreement_report(expected_pairs, sorted(sample.labels)).by_label["nsfw"]
    assert printed["reviewers"]["by_label"]["nsfw"]["value"] == pytest.approx(kappa.value)
    assert kappa.value is not None and 0.4 < kappa.value < 0.95  # the second reviewer agrees 85 % of the time
