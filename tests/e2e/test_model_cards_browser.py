"""A reviewer opens the Model cards page in a real browser and downloads a card: nothing blocked
by the dashboard's Content-Security-Policy, no console error. Headless Chromium from Debian,
driven by Playwright, as in test_dashboard_browser.py. A screenshot of the page is written to
artifacts/model-cards-page.png.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from modstream.cli.dashboard import model_cards_page
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.review.service import ReviewService

from tests.archive import private_archive
from tests.dashboard_helpers import dashboard_app, make_users, serving, sign_in
from tests.e2e.test_dashboard_browser import CHROMIUM, FLAGS, Console
from tests.integration.test_model_cards_page import on_the_ensemble, serving_ensemble
from tests.quality_seed import reviewed_traffic, write_archive

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
SCREENSHOT = PROJECT_ROOT / "artifacts" / "model-cards-page.png"


@pytest.fixture
async def served(stack_settings: Settings, tmp_path: Path) -> AsyncIterator[str]:
    """The dashboard with the Model cards page over a private archive of reviewed traffic."""
    settings = await private_archive(stack_settings)
    records = reviewed_traffic(f"cards-browser-{uuid.uuid4().hex[:6]}", 2, seed=13)
    write_archive(settings, on_the_ensemble(records, serving_ensemble(settings)))
    service = ReviewService(stack_settings)
    service.queues._prefix = "cards-browser-test:"
    make_users(tmp_path / "users.toml")
    async with serving(
        dashboard_app(service, tmp_path / "users.toml", reader_pages=[model_cards_page(settings)])
    ) as address:
        yield address


async def test_a_reviewer_reads_the_model_cards_and_downloads_one_under_the_csp(served: str) -> None:
    from playwright.async_api import async_playwright

    base = served
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        console = Console()
        await console.watch(page)
        await sign_in(page, base, "rita")
        await page.click("nav >> text=Model cards")
        await page.wait_for_url(f"{base}/model-cards")

        ensemble = page.locator("#card-moderation-1")
        assert await ensemble.locator("h2").inner_text() == "Model card: moderation version 1"
        quality = ensemble.locator("table").nth(1)  # intended use, then quality
        assert await quality.is_visible()
        assert "sexual.any" in await quality.inner_text()
        # Styled by the stylesheet (a style attribute would have been blocked).
        assert await ensemble.evaluate("s => getComputedStyle(s).backgroundColor") == "rgb(255, 255, 255)"

        async with page.expect_download() as downloading:
            await ensemble.locator("a", has_text="JSON").click()
        download = await downloading.value
        assert download.suggested_filename == "moderation-1.json"
        card = json.loads(await asyncio.to_thread(Path(await download.path()).read_text))
        assert card["name"] == "moderation" and any(e["label"] == "sexual.any" for e in card["quality"])

        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert console.errors == []  # nothing blocked by the CSP, no script error, no failed load
        await browser.close()
