"""The dashboard's Quality page on real servers: a private archive in S3, drift tallies in
Redis, the page composed into the dashboard as ``modstream dashboard`` does."""

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from modstream.core.events import Record
from modstream.core.evidence import Period, review_pairs, sampled_verdicts
from modstream.core.gold import VERDICT, GoldAnswer
from modstream.core.lake import open_archive
from modstream.core.settings import Settings
from modstream.quality.agreement import agreement_report
from modstream.quality.drift import DECISIONS, drift, tally, window_of
from modstream.quality.page import QualityPage
from modstream.quality.report import QualityReport, quality_report
from modstream.review.gold import GoldBook, GoldItem
from modstream.review.service import ReviewService
from modstream.review.web.app import create_app

from tests.archive import private_archive
from tests.dashboard_helpers import dashboard, log_in
from tests.integration.test_dashboard import INLINE
from tests.quality_seed import DRIFT, decisions_of, reviewed_traffic, tally_drift, write_archive
from tests.review_jobs import review_job

pytestmark = pytest.mark.integration
HOURS = 20
ROW = re.compile(
    r'<tr><td>(review|block)</td><td class="num">([^<]*)</td>\s*<td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>'
)
HEADING = re.compile(r'<h2>(\w+) <span class="muted">model (\w+)(?:, tenant ([\w-]+))?</span></h2>')


@dataclass
class Seeded:
    settings: Settings
    tenant: str
    records: list[tuple[str, Record]]


@pytest.fixture
async def seeded(stack_settings: Settings) -> Seeded:
    settings = (await private_archive(stack_settings)).model_copy(update=DRIFT)
    tenant = f"quality-{uuid.uuid4().hex[:8]}"  # drift tallies are shared by the whole Redis
    records = reviewed_traffic(tenant, HOURS, seed=7)
    write_archive(settings, records)
    await tally_drift(settings, records)
    return Seeded(settings, tenant, records)


def quality_dashboard(service: ReviewService, users: Path, page: QualityPage) -> FastAPI:
    """The dashboard with the Quality page, as ``modstream dashboard`` composes it."""
    prefix = f"{service.queues._prefix}dashboard:"
    return create_app(service, users, run_feeds=False, redis_prefix=prefix, admin_pages=[page])


def the_cli_report(settings: Settings, *, tenant: str | None = None) -> tuple[QualityReport, list[str]]:
    """What ``modstream quality report`` computes: the report, and the agreement's strings."""
    period = Period(tenant=tenant)
    with open_archive(settings) as archive:
        sample = sampled_verdicts(archive, period)
        pairs = review_pairs(archive, period)
    agreement = agreement_report(pairs, sorted(sample.labels))
    shown = [*agreement.by_label.values(), *agreement.by_reviewer_pair.values(), *agreement.with_majority.values()]
    return quality_report(sample, by_tenant=tenant is not None), [str(s) for s in shown]


def sections(html: str) -> dict[tuple[str, str, str | None], list[tuple[str, ...]]]:
    """(label, model version, tenant) -> the metrics rows the page shows for it."""
    found = {}
    for part in html.split('<section class="label-quality">')[1:]:
        heading = HEADING.search(part)
        assert heading is not None, part[:200]
        found[(heading[1], heading[2], heading[3])] = ROW.findall(part)
    return found


def expected_rows(report: QualityReport) -> dict[tuple[str, str, str | None], list[tuple[str, ...]]]:
    return {
        (row.label, row.model_version, row.tenant): [
            (
                name,
                "-" if at.threshold is None else f"{at.threshold:.3f}",
                str(at.precision),
                str(at.recall),
                str(at.f1),
            )
            for name, at in (("review", row.at_review), ("block", row.at_block))
        ]
        for row in report.labels
    }


def chart_titled(html: str, title: str) -> ET.Element:
    for svg in re.findall(r"<svg .*?</svg>", html, re.DOTALL):
        root = ET.fromstring(svg)
        if root.findtext("{http://www.w3.org/2000/svg}title") == title:
            return root
    raise AssertionError(f"no chart titled {title!r}")


def expected_drift(seeded: Seeded, label: str) -> list[str]:
    """Each compared window's point, from the decisions themselves rather than from Redis."""
    seconds = seeded.settings.drift_window_seconds
    counts = {w: c for (s, w), c in tally(decisions_of(seeded.records), seconds).counts.items() if s.label == label}
    windows = sorted(counts)
    reference = np.sum([counts[w] for w in windows[: seeded.settings.drift_reference_windows]], axis=0)
    last = window_of(datetime.now(UTC), seconds)
    return [
        f"{datetime.fromtimestamp(w * seconds, UTC):%Y-%m-%d %H:%M} UTC: PSI {drift(reference, counts[w]).psi:.3f}"
        for w in windows[seeded.settings.drift_reference_windows :]
        if w > last - 48 and counts[w][DECISIONS] >= seeded.settings.drift_min_count
    ]


async def test_an_admin_sees_the_numbers_of_the_quality_report_with_curves_and_drift(
    seeded: Seeded, service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    page = QualityPage(seeded.settings)
    async with dashboard(service, users[0], app=quality_dashboard(service, users[0], page)) as admin:
        await log_in(admin, "ada")
        assert 'href="/admin/quality">Quality</a>' in (await admin.get("/")).text
        response = await admin.get("/admin/quality")
        by_tenant = await admin.get("/admin/quality", params={"tenant": seeded.tenant})
    assert response.status_code == 200 and by_tenant.status_code == 200

    report, agreement = the_cli_report(seeded.settings)
    assert sections(response.text) == expected_rows(report)
    assert any("[" in row[2] for rows in expected_rows(report).values() for row in rows)  # real intervals shown
    tenant_report, _ = the_cli_report(seeded.settings, tenant=seeded.tenant)
    assert sections(by_tenant.text) == expected_rows(tenant_report)
    assert {tenant for _, _, tenant in sections(by_tenant.text)} == {seeded.tenant}

    # Kappa per label and per reviewer pair, and agreement with the majority, as the CLI prints them.
    assert len(agreement) == 5 and all(s in response.text for s in agreement)
    assert any("[" in s for s in agreement)

    # nsfw has a weighted curve with both thresholds marked; no reviewer ever gave nsfl.
    curve = chart_titled(response.text, "nsfw, model 1: precision against recall")
    points = curve.find("{http://www.w3.org/2000/svg}polyline")
    assert points is not None and len(points.attrib["points"].split()) > 100
    assert {c.attrib["class"] for c in curve.iter("{http://www.w3.org/2000/svg}circle")} == {
        "threshold review",
        "threshold block",
    }
    assert response.text.count('class="chart pr"') == 1
    assert response.text.count("No reviewer gave this label yet.") == 1

    # Drift per window, read back from Redis: the same PSI as the decisions give, alarming at the shift.
    for label in ("nsfw", "nsfl"):
        chart = chart_titled(response.text, f"Drift of {label} for {seeded.tenant}, model 1: PSI per window")
        shown = [
            c.findtext("{http://www.w3.org/2000/svg}title") for c in chart.iter("{http://www.w3.org/2000/svg}circle")
        ]
        expected = expected_drift(seeded, label)
        assert len(expected) >= HOURS - 5 and shown == expected
    nsfw = chart_titled(response.text, f"Drift of nsfw for {seeded.tenant}, model 1: PSI per window")
    assert "point alert" in {c.attrib["class"] for c in nsfw.iter("{http://www.w3.org/2000/svg}circle")}


async def test_a_filter_set_is_read_once_a_minute(
    seeded: Seeded, service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    page = QualityPage(seeded.settings)
    async with dashboard(service, users[0], app=quality_dashboard(service, users[0], page)) as admin:
        await log_in(admin, "ada")
        before = sections((await admin.get("/admin/quality")).text)
        more = reviewed_traffic(seeded.tenant, 2, seed=8)
        write_archive(seeded.settings, more)
        kept = sections((await admin.get("/admin/quality")).text)
        other_filters = sections((await admin.get("/admin/quality", params={"days": "29"})).text)
    report, _ = the_cli_report(seeded.settings)
    assert kept == before != other_filters == expected_rows(report)


async def test_reviewers_get_403_and_nobody_without_a_session_gets_in(
    seeded: Seeded, service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    app = quality_dashboard(service, users[0], QualityPage(seeded.settings))
    async with dashboard(service, users[0], app=app) as anonymous:
        response = await anonymous.get("/admin/quality")
        assert (response.status_code, response.headers["location"]) == (303, "/login")
    async with dashboard(service, users[0], app=app) as reviewer:
        await log_in(reviewer, "rita")
        assert (await reviewer.get("/admin/quality")).status_code == 403
        assert "/admin/quality" not in (await reviewer.get("/")).text


async def test_no_inline_script_or_style_and_hostile_filters_are_escaped(
    seeded: Seeded, service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    hostile = '"><script>alert(1)</script>'
    app = quality_dashboard(service, users[0], QualityPage(seeded.settings))
    async with dashboard(service, users[0], app=app) as admin:
        await log_in(admin, "ada")
        pages = {
            "all": (await admin.get("/admin/quality")).text,
            "tenant": (await admin.get("/admin/quality", params={"tenant": seeded.tenant})).text,
            "hostile": (await admin.get("/admin/quality", params={"tenant": hostile, "days": "abc"})).text,
        }
    assert pages["all"].count("<svg") >= 3  # the curve and both labels' drift
    for name, html in pages.items():
        found = INLINE.search(html)
        assert found is None, (name, html[max(found.start() - 80, 0) : found.end() + 80] if found else "")
    hostile_page = pages["hostile"]
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in hostile_page
    assert "No automatic decision in the archive for these filters." in hostile_page
    assert "Days back must be a whole number from 1 to 366; showing 30." in hostile_page
    assert 'name="days" type="number" min="1" max="366" value="30"' in hostile_page


async def test_a_label_whose_reviewers_fail_gold_items_is_flagged_beside_its_precision_and_recall(
    seeded: Seeded, service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    """The review room's tallies in Redis, handed to the page as ``modstream dashboard`` does."""
    client = aioredis.Redis.from_url(seeded.settings.redis_url)
    book = GoldBook(client, prefix=f"quality-gold-{uuid.uuid4().hex}:")
    item = GoldItem(
        "e",
        review_job("e", "nsfw", tenant=seeded.tenant),
        GoldAnswer("remove", frozenset({"nsfw"})),
        "ada",
        datetime.now(UTC),
        "rita",
    )
    for right in [True] * 10 + [False] * 15:  # remy: 10 of 25 on nsfw, under 80 % over at least 20
        await book.record("remy", item, {VERDICT: True, "nsfw": right})
    for _ in range(5):  # rita: right every time, but over too few to judge
        await book.record("rita", item, {VERDICT: True, "nsfw": True})
    page = QualityPage(seeded.settings, gold=book.tallies)
    async with dashboard(service, users[0], app=quality_dashboard(service, users[0], page)) as admin:
        await log_in(admin, "ada")
        shown = (await admin.get("/admin/quality")).text
    await client.aclose()
    nsfw = shown[shown.index("<h2>nsfw ") : shown.index("</section>", shown.index("<h2>nsfw "))]
    words = " ".join(nsfw.split())
    assert "Reviewers are unreliable on nsfw: right on 50% [" in words and "of 30 gold answers, under 80 %." in words
    nsfl = shown[shown.index("<h2>nsfl ") : shown.index("</section>", shown.index("<h2>nsfl "))]
    assert "unreliable" not in nsfl and "gold" not in nsfl  # nobody answered gold on nsfl
    table = shown[shown.index('class="compact gold-reviewers"') :]
    assert '<tr class="late"><td>remy</td><td>nsfw</td><td>40% [' in table
    assert "<tr><td>rita</td><td>nsfw</td><td>100% [" in table and "of 5</td>" in table
