"""The quality report read from a real archive: what the archiver wrote, as the CLI reads it."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from modstream.core.archive import open_archive
from modstream.core.events import ReviewVerdict
from modstream.core.settings import Settings
from modstream.policy.loader import load_policies
from modstream.quality.agreement import Pair, agreement_report
from modstream.quality.archived import Period, load_sample, verdict_pairs
from modstream.quality.report import quality_report

from tests.archive import Produce, archive_in_process, private_archive, traffic

SEEDED_POLICY = """id: default
version: "seeded-1"
ignore: [sfw]
labels:
  nsfw: {review_at: 0.4, block_at: 0.85, queue: sexual-content}
  nsfl: {review_at: 0.35, block_at: 0.8, queue: graphic-violence}
"""

pytestmark = pytest.mark.integration


async def test_the_report_agreement_and_advice_come_from_what_was_archived(
    stack_settings: Settings, tmp_path: Path
) -> None:
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

    # Advice from the same archive, written as a proposal that the policy loader accepts once
    # moved into place (and not before).
    policies = tmp_path / "policies"  # for the labels of the seeded archive (tests/archive.py)
    policies.mkdir()
    (policies / "default.yaml").write_text(SEEDED_POLICY)
    command = [sys.executable, "-m", "modstream.cli", "quality", "suggest", "--label", "nsfw"]
    command += ["--target-precision", "0.6", "--target-recall", "0.8", "--write"]
    env |= {"MODSTREAM_POLICIES_DIR": str(policies), "COLUMNS": "200"}
    advised = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True)
    assert advised.returncode == 0, advised.stdout + advised.stderr
    assert "backtest over 600 archived decisions" in advised.stdout and "review per day" in advised.stdout
    (written,) = (policies / "proposed").glob("default-proposed-*.yaml")
    assert load_policies(policies).default.version != yaml.safe_load(written.read_text())["version"]
    shutil.move(written, policies / "default.yaml")
    proposed = load_policies(policies).default.labels["nsfw"]
    assert proposed.review_at < 0.4  # recall 0.8 needs more reviews than 0.4 gives (most positives score low)
