"""The quality report read from a real archive: what the archiver wrote, as the CLI reads it."""

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import yaml
from modstream.core.events import ModerationDecision, Record, ReviewVerdict
from modstream.core.evidence import Pair, Period, review_pairs, sampled_verdicts
from modstream.core.gold import GoldAnswer
from modstream.core.labels import LabelRegistry, label_definition
from modstream.core.lake import open_archive
from modstream.core.settings import Settings
from modstream.policy.loader import load_policies
from modstream.quality.advice import advise
from modstream.quality.agreement import agreement_report
from modstream.quality.report import quality_report
from modstream.review.gold import GoldBook, GoldItem

from tests.archive import Produce, archive_in_process, private_archive, traffic
from tests.review_jobs import review_job

# A label a new model version scores and the policy ignores until its thresholds are set.
SEEDED_POLICY = """id: default
version: "seeded-1"
ignore: [sfw, {new_label}]
labels:
  nsfw: {{review_at: 0.4, block_at: 0.85, queue: sexual-content}}
  nsfl: {{review_at: 0.35, block_at: 0.8, queue: graphic-violence}}
"""
# Half-way through the seeded traffic (2026-11-27 20:00 to 2026-11-28 16:00).
DEFINED = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def with_new_label(records: list[tuple[str, Record]], label: str, seed: int) -> list[tuple[str, Record]]:
    """Every decision scores ``label`` too; reviewers name it on first verdicts given from
    DEFINED on, with a probability of its score (before, they could not tick it)."""
    rng = random.Random(seed)
    scored: dict[str, float] = {}
    out: list[tuple[str, Record]] = []
    for table, record in records:
        if isinstance(record, ModerationDecision):
            scored[record.decision_id] = rng.random()
            record = record.model_copy(update={"scores": record.scores | {label: scored[record.decision_id]}})
        elif (
            isinstance(record, ReviewVerdict)
            and record.job_kind != "second_review"
            and record.occurred_at >= DEFINED
            and rng.random() < scored[record.automatic_decision_id]
        ):
            record = record.model_copy(update={"labels": [*record.labels, label]})
        out.append((table, record))
    return out


pytestmark = pytest.mark.integration


async def test_the_report_agreement_and_advice_come_from_what_was_archived(
    stack_settings: Settings, tmp_path: Path
) -> None:
    settings = (await private_archive(stack_settings)).model_copy(
        update={"archive_flush_seconds": 1.0, "archive_web_port": 0}
    )
    new_label = f"emblem.t{uuid.uuid4().hex[:8]}"  # the registry is the session's: a name of this run's own
    records = with_new_label(list(traffic(600, seed=2)), new_label, seed=3)
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
        sample = sampled_verdicts(archive, Period())
        pairs = review_pairs(archive, Period())
    assert len(sample) == 600 and int(sample.labelled.sum()) == len(firsts)
    assert sorted(pairs, key=lambda p: p.item) == sorted(expected_pairs, key=lambda p: p.item)
    assert len(pairs) >= 30  # enough for a kappa

    # The CLI prints the same numbers from the same files, and reviewers' accuracy on gold items
    # from the review room's tallies in Redis (nsfw: 12 of 25 right, under 80 % of at least 20).
    client = aioredis.Redis.from_url(settings.redis_url)
    item = GoldItem(
        "e", review_job("e", "nsfw"), GoldAnswer("remove", frozenset({"nsfw"})), "ada", datetime.now(UTC), "rita"
    )
    for right in range(25):
        await GoldBook(client).record(f"gold-{right % 3}", item, {"nsfw": right < 12})
    await client.aclose()
    env = {**os.environ, **settings.as_env()}
    command = [sys.executable, "-m", "modstream.cli", "quality", "report", "--json"]
    done = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    expected = quality_report(sample).to_dict()
    assert json.loads(json.dumps(expected, default=str)) == {k: printed[k] for k in expected}
    kappa = agreement_report(expected_pairs, sorted(sample.labels)).by_label["nsfw"]
    assert printed["reviewers"]["by_label"]["nsfw"]["value"] == pytest.approx(kappa.value)
    assert {k: printed["gold"]["nsfw"][k] for k in ("answers", "right")} == {"answers": 25, "right": 12}
    text = await asyncio.to_thread(
        subprocess.run, command[:-1], env=env | {"COLUMNS": "200"}, capture_output=True, text=True
    )
    assert "nsfw: 48% [" in text.stdout and "unreliable: under 80%" in text.stdout, text.stdout
    assert kappa.value is not None and 0.4 < kappa.value < 0.95  # the second reviewer agrees 85 % of the time

    # Advice from the same archive, written as a proposal that the policy loader accepts once
    # moved into place (and not before).
    policies = tmp_path / "policies"  # for the labels of the seeded archive (tests/archive.py)
    policies.mkdir()
    (policies / "default.yaml").write_text(SEEDED_POLICY.format(new_label=new_label))
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

    # The label under ignore: its thresholds from the verdicts given since the registry says it
    # was defined (the same numbers in-process), written as a rule of its own that loads.
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        await LabelRegistry(client).define(label_definition(new_label, "a red emblem", "test", at=DEFINED))
    finally:
        await client.aclose()
    command = [sys.executable, "-m", "modstream.cli", "quality", "suggest", "--label", new_label]
    command += ["--target-precision", "0.6", "--target-recall", "0.8", "--write"]
    advised = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True)
    assert advised.returncode == 0, advised.stdout + advised.stderr
    queue = new_label.replace(".", "-")
    assert f"{new_label} is under ignore in policy default: a new rule in queue {queue}" in advised.stdout
    assert "counting verdicts from 2026-11-28 06:00:00 UTC (its definition)" in advised.stdout
    # Decisions 300 to 599 of the traffic, every one scoring the label.
    assert f"backtest over 300 archived decisions that score {new_label}" in advised.stdout
    with open_archive(settings) as archive:
        since_defined = sampled_verdicts(archive, Period(since=DEFINED), extra_labels=[new_label])
    advice = advise(since_defined, new_label, None, target_precision=0.6, target_recall=0.8)
    assert f"from {advice.labelled} labelled decisions ({advice.positives} with {new_label}) of 300" in advised.stdout
    (written,) = (policies / "proposed").glob("default-proposed-*.yaml")
    raw = yaml.safe_load(written.read_text())
    assert raw["labels"][new_label] == advice.proposed.model_dump() | {"queue": queue}
    assert raw["ignore"] == ["sfw"]
    shutil.move(written, policies / "default.yaml")
    moved = load_policies(policies).default
    assert new_label not in moved.ignore and moved.labels[new_label].queue == queue
    print(f"{new_label}: {advice.proposed} from {advice.labelled} verdicts ({advice.positives} +); {advice.notes}")
