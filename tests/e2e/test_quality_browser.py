"""An admin opens the Quality page in a real browser: the charts are drawn, under the
dashboard's Content-Security-Policy, with nothing blocked and no console error. Headless
Chromium from Debian, driven by Playwright, as in test_dashboard_browser.py. A screenshot of
the page is written to artifacts/quality-page.png.
"""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.quality.page import QualityPage
from modstream.review.service import ReviewService

from tests.archive import private_archive
from tests.dashboard_helpers import dashboard_app, make_users, serving, sign_in
from tests.e2e.test_dashboard_browser import CHROMIUM, FLAGS, Console
from tests.quality_seed import DRIFT, reviewed_traffic, tally_drift, write_archive

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
SCREENSHOT = PROJECT_ROOT / "artifacts" / "quality-page.png"


@pytest.fixture
async def served(stack_settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """The dashboard with the Quality page over a seeded private archive: (address, tenant)."""
    settings = (await private_archive(stack_settings)).model_copy(update=DRIFT)
    tenant = f"browser-{uuid.uuid4().hex[:6]}"
    records = reviewed_traffic(tenant, 20, seed=11)
    write_archive(settings, records)
    await tally_drift(settings, records)
    service = ReviewService(stack_settings)
    service.queues._prefix = "quality-browser-test:"
    make_users(tmp_path / "users.toml")
    async with serving(dashboard_app(service, tmp_path / "users.toml", admin_pages=[QualityPage(settings)])) as address:
        yield address, tenant


async def test_an_admin_sees_the_quality_charts_under_the_csp(served: tuple[str, str]) -> None:
    from playwright.async_api import async_playwright

    base, tenant = served
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        console = Console()
        await console.watch(page)
        await sign_in(page, base, "ada")
        await page.click("nav >> text=Quality")
        await page.wait_for_url(f"{base}/admin/quality")

        # Filter by the seeded tenant through the form, as an admin would.
        await page.fill("input[name=tenant]", tenant)
        await page.click("form.filters button[type=submit]")
        await page.wait_for_url(f"{base}/admin/quality?tenant={tenant}&model_version=&days=30")
        curve = page.locator("svg.chart.pr")
        drift = page.locator("svg.chart.drift")
        assert await curve.count() == 1 and await drift.count() == 2  # nsfw's curve; nsfw's and nsfl's drift
        for chart in (curve.first, drift.first, drift.last):
            assert await chart.is_visible()
            box = await chart.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 200
        # Drawn, and coloured by the stylesheet (no style attribute could have done it).
        line = curve.locator("polyline.curve")
        assert (await line.evaluate("l => l.getBBox().width")) > 100
        assert await line.evaluate("l => getComputedStyle(l).fill") == "none"
        assert await curve.locator("circle.threshold").count() == 2
        # nsfw's scores moved up in the last third of the day; nsfl's stayed put.
        shifted = drift.filter(has_text="Drift of nsfw")
        steady = drift.filter(has_text="Drift of nsfl")
        assert await shifted.locator("circle.point.alert").count() >= 3
        assert await steady.locator("circle.point.calm").count() >= 10
        assert await steady.locator("circle.point.alert").count() == 0
        assert await page.locator("text=No reviewer gave this label yet.").is_visible()

        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert console.errors == []  # nothing blocked by the CSP, no script error, no failed load
        await browser.close()
    assert SCREENSHOT.stat().st_size > 30_000
