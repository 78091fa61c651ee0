"""Model cards on real servers: reviewed traffic of the serving ensemble in a private archive
(S3 and its Iceberg catalog), drift tallied in Redis as the archiver's monitor tallies it, the
page composed into the dashboard as ``modstream dashboard`` composes it, and ``modstream model
card`` as a process. The cards change when a commit adds verdicts."""

import asyncio
import html
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from modstream.cli.dashboard import model_cards_page
from modstream.cli.model_cards import TABLES
from modstream.core.events import ModelRef, ModerationDecision, Record, ReviewVerdict
from modstream.core.evidence import Period
from modstream.core.inference import model_ref
from modstream.core.lake import snapshot_ids
from modstream.core.settings import Settings
from modstream.models.served_cards import serving_version
from modstream.models.taxonomy import ensemble_components
from modstream.quality.archived import measure
from modstream.review.service import ReviewService
from modstream.review.web.app import create_app

from tests.archive import private_archive
from tests.dashboard_helpers import dashboard, log_in
from tests.integration.test_dashboard import INLINE
from tests.quality_seed import DRIFT, reviewed_traffic, tally_drift, write_archive

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
HOURS = 8
FEW = 12
# The seeded traffic's labels, as the ensemble's image_safety component names them.
RENAMED = {"nsfw": "sexual.any", "nsfl": "violence.gore", "sfw": "sfw"}
# A table row of a label and 5 (quality) or 3 (drift) cells without markup.
ROW = re.compile(r"<tr>\s*<td>([\w.]+)</td>\s*" + r"<td>([^<]*)</td>\s*" * 5 + r"</tr>")
DRIFT_ROW = re.compile(r"<tr>\s*<td>([\w.]+)</td>\s*" + r"<td>([^<]*)</td>\s*" * 3 + r"</tr>")


def serving_ensemble(settings: Settings) -> ModelRef:
    """What the worker records for a decision of the serving ensemble (its taxonomy by hash)."""
    root = settings.model_repository
    members = ensemble_components(root, "moderation") - {"taxonomy"}
    return model_ref("moderation", [f"{m}:{serving_version(root, m)}" for m in members] + ["taxonomy:c0ffee"])


def on_the_ensemble(records: list[tuple[str, Record]], model: ModelRef) -> list[tuple[str, Record]]:
    """The seeded traffic as the serving ensemble scores it; verdicts not yet given left out."""
    out: list[tuple[str, Record]] = []
    for table, record in records:
        if isinstance(record, ModerationDecision):
            scores = {RENAMED[k]: v for k, v in record.scores.items()}
            thresholds = {RENAMED[k]: v for k, v in record.thresholds.items()}
            record = record.model_copy(update={"model": model, "scores": scores, "thresholds": thresholds})
        elif isinstance(record, ReviewVerdict):
            if record.occurred_at > datetime.now(UTC) - timedelta(minutes=1):
                continue
            scores = {RENAMED[k]: v for k, v in record.scores.items()}
            labels = [RENAMED[k] for k in record.labels]
            record = record.model_copy(update={"model": model, "scores": scores, "labels": labels})
        out.append((table, record))
    return out


def rows(page: str, pattern: re.Pattern[str], card: str) -> dict[str, tuple[str, ...]]:
    """label -> the cells of its row in one card's table of that shape."""
    part = page.split(f'id="card-{card}"', 1)[1].split('<section class="card model-card"', 1)[0]
    return {found[1]: tuple(html.unescape(c) for c in found.groups()[1:]) for found in pattern.finditer(part)}


async def card_command(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "modstream.cli", "model", "card", *args]
    env = {**os.environ, **settings.as_env()}
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=120)


async def test_cards_say_not_enough_verdicts_then_show_the_figures_once_verdicts_are_archived(
    stack_settings: Settings, service: ReviewService, users: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    settings = (await private_archive(stack_settings)).model_copy(
        update={**DRIFT, "redis_url": stack_settings.redis_url.rsplit("/", 1)[0] + "/6"}  # drift state of its own
    )
    client = aioredis.Redis.from_url(settings.redis_url)
    await client.flushdb()
    tenant = f"cards-{uuid.uuid4().hex[:8]}"
    records = on_the_ensemble(reviewed_traffic(tenant, HOURS, seed=5), serving_ensemble(settings))
    decisions = [(t, r) for t, r in records if t == "decisions"]
    verdicts: list[tuple[str, Record]] = [
        (t, r) for t, r in records if isinstance(r, ReviewVerdict) and r.job_kind != "second_review"
    ]
    # A few verdicts first: decisions and FEW verdicts in one commit per table.
    write_archive(settings, decisions + verdicts[:FEW])
    await tally_drift(settings, records)
    raised = await client.hget(f"drift:raised-since:{tenant}", "sexual.any")
    await client.aclose()
    assert raised is not None  # the last third's scores moved up: the monitor made the label drift
    since = datetime.fromisoformat(raised.decode().split(" ")[0])

    page = model_cards_page(settings)  # as `modstream dashboard` composes it
    prefix = f"{service.queues._prefix}dashboard:"
    app = create_app(service, users[0], run_feeds=False, redis_prefix=prefix, reader_pages=[page])
    async with dashboard(service, users[0], app=app) as anonymous:
        refused = await anonymous.get("/model-cards")
        assert (refused.status_code, refused.headers["location"]) == (303, "/login")
        assert (await anonymous.get("/model-cards/moderation-1.md")).status_code == 401
        token = {"Authorization": f"Bearer {users[1]['rita']}"}  # a script with an API token may fetch a card
        assert (await anonymous.get("/model-cards/moderation-1.md", headers=token)).status_code == 200
        assert (await anonymous.get("/model-cards/moderation-9.md", headers=token)).status_code == 404

    async with dashboard(service, users[0], app=app) as reviewer:
        await log_in(reviewer, "rita")  # a reviewer reads the cards too
        assert 'href="/model-cards">Model cards</a>' in (await reviewer.get("/")).text
        few = await reviewer.get("/model-cards")
        assert few.status_code == 200
        found = INLINE.search(few.text)
        assert found is None, few.text[max(found.start() - 80, 0) : found.end() + 80] if found else ""
        for card in ("moderation-1", "image_safety-1", "nsfwjs-1", "opennsfw-1", "efficientnet_lite0-1", "heads-1"):
            assert f'id="card-{card}"' in few.text and f'href="/model-cards/{card}.json"' in few.text
        assert rows(few.text, ROW, "moderation-1")["sexual.any"][2:4] == (f"not enough verdicts ({FEW} of 30)",) * 2
        drifting = rows(few.text, DRIFT_ROW, "moderation-1")
        assert drifting["sexual.any"][:2] == ("drifting for 1 of 1 tenant", f"{since:%Y-%m-%d %H:%M} UTC")
        assert drifting["violence.gore"][0] == "not drifting (1 tenant)" and drifting["drugs"][0].startswith("no read")
        assert rows(few.text, DRIFT_ROW, "image_safety-1")["sexual.any"][0] == "drifting for 1 of 1 tenant"
        assert "drugs" not in rows(few.text, DRIFT_ROW, "image_safety-1")  # not image_safety's label
        few_json = json.loads((await reviewer.get("/model-cards/moderation-1.json")).text)
        assert [(e["label"], e["enough"], e["precision"]) for e in few_json["quality"]] == [
            ("sexual.any", False, None),
            ("violence.gore", False, None),
        ]

        # The rest of the verdicts, in a commit of their own: the next view measures again.
        write_archive(settings, verdicts[FEW:])
        many = await reviewer.get("/model-cards")
        markdown = await reviewer.get("/model-cards/moderation-1.md")
        again = await reviewer.get("/model-cards")
    assert page.cards.measured == 2  # once per snapshot: the views in between read the kept measurement
    assert markdown.headers["content-disposition"] == 'attachment; filename="moderation-1.md"'
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert rows(again.text, ROW, "moderation-1") == rows(many.text, ROW, "moderation-1")

    measured = measure(settings, Period())
    (expected,) = [r for r in measured.report.labels if r.label == "sexual.any"]
    judged = {v.automatic_decision_id for _, v in verdicts if isinstance(v, ReviewVerdict)}
    times = [r.occurred_at for _, r in decisions if isinstance(r, ModerationDecision) and r.decision_id in judged]
    first, last = min(times), max(times)
    shown = rows(many.text, ROW, "moderation-1")["sexual.any"]
    at = expected.at_block
    assert expected.labelled > 30 and "[" in str(at.precision) and "[" in str(at.recall)
    assert shown == (
        f"{expected.labelled} ({expected.positives})",
        f"{at.threshold:.2f}",
        str(at.precision),
        str(at.recall),
        f"{first:%Y-%m-%d} to {last:%Y-%m-%d}",
    )
    assert f"| sexual.any | {' | '.join(shown)} |" in markdown.text  # the download says what the page shows

    # The command: the same figures, and the snapshots they were read from.
    printed = await card_command(settings, "--json")
    assert printed.returncode == 0, printed.stderr
    card = json.loads(printed.stdout)
    (any_label,) = [e for e in card["quality"] if e["label"] == "sexual.any"]
    assert any_label["enough"] is True and any_label["precision"]["value"] == pytest.approx(at.precision.value)
    assert (any_label["precision"]["low"], any_label["recall"]["high"]) == pytest.approx(
        (at.precision.low, at.recall.high)
    )
    assert datetime.fromisoformat(any_label["first"]) == first and datetime.fromisoformat(any_label["last"]) == last
    now = snapshot_ids(settings, TABLES)
    assert card["made_from"] == {
        "snapshots": {k: v for k, v in now.items()},
        "verdicts": int(measured.sample.labelled.sum()),
    }
    assert [d["drifting"] for d in card["drift"] if d["label"] == "sexual.any"] == [1]

    written = await card_command(settings, "--name", "image_safety", "--out", str(tmp_path))
    assert written.returncode == 0, written.stderr
    on_disk = json.loads((tmp_path / "image_safety-1.json").read_text())
    assert on_disk["made_from"]["snapshots"] == {k: v for k, v in now.items()}
    assert f"| sexual.any | {' | '.join(shown)} |" in (tmp_path / "image_safety-1.md").read_text()
