"""A reviewer in a real browser: log in, open a queue, reveal, approve with the keyboard, next job.

Headless Chromium from Debian (scripts/install-chromium), driven by Playwright.
A screenshot of the review page is written to artifacts/dashboard-review.png.
"""

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.review.service import ReviewService
from modstream.review.web.app import create_app

from tests.dashboard_helpers import PASSWORDS, make_users, seed_job
from tests.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = PROJECT_ROOT / "artifacts" / "dashboard-review.png"


@pytest.fixture
async def served(stack_settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[str, ReviewService]]:
    service = ReviewService(stack_settings)
    service.queues._prefix = "browser-test:"
    make_users(tmp_path / "users.toml")
    port = free_port()
    config = uvicorn.Config(
        create_app(service, tmp_path / "users.toml", run_feeds=False), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}", service
    server.should_exit = True
    await task


def filter_of(selector: str) -> str:
    return f"document.querySelector('{selector}') && getComputedStyle(document.querySelector('{selector}')).filter"


async def test_reviewer_reveals_approves_with_the_keyboard_and_sees_the_next_job(
    served: tuple[str, ReviewService],
) -> None:
    from playwright.async_api import async_playwright

    base, service = served
    first = await seed_job(service.settings, service, "browser-1", "browser", score=0.9)
    second = await seed_job(service.settings, service, "browser-2", "browser", score=0.5)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        await page.goto(f"{base}/jobs/{first.job_id}")
        assert page.url == f"{base}/login"  # no session, no page

        await page.fill("input[name=username]", "rita")
        await page.fill("input[name=password]", PASSWORDS["rita"])
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/")
        row = page.locator("tr", has_text="browser")
        assert await row.locator("td.num").first.inner_text() == "2"
        await row.locator("button", has_text="Start reviewing").click()
        await page.wait_for_url(f"{base}/jobs/{first.job_id}")
        await page.wait_for_function("document.querySelector('#subject').complete")
        assert await page.evaluate("document.querySelector('#subject').naturalWidth") > 0

        shielded = await page.evaluate(filter_of("#subject"))
        assert "blur" in shielded and "grayscale" in shielded
        await page.keyboard.down(" ")
        assert await page.evaluate(filter_of("#subject")) == "none"
        await page.keyboard.up(" ")
        assert "blur" in await page.evaluate(filter_of("#subject"))

        await page.keyboard.press("?")
        assert await page.is_visible("#help")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
        await page.keyboard.press("?")
        assert not await page.is_visible("#help")

        await page.keyboard.press("a")
        await page.wait_for_url(f"{base}/jobs/{second.job_id}")  # the next job loads by itself
        assert await page.is_visible("#approve")
        await browser.close()

    closed = await service.job(first.job_id)
    assert closed is not None and closed[2] == "closed"
    verdicts = [
        e for e in await service.audit_entries(actor="rita", action="verdict") if e.details["job"] == first.job_id
    ]
    assert verdicts and verdicts[0].details["verdict"] == "approve"
    assert SCREENSHOT.stat().st_size > 10_000
