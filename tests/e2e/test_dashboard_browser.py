"""A reviewer in a real browser: log in, open a queue, reveal, approve with the keyboard, next job.

All of it under the dashboard's Content-Security-Policy: the review page's script runs, and
no page causes a CSP violation (or any other console error). Headless Chromium from Debian
(scripts/install-chromium), driven by Playwright. A screenshot of the review page is
written to artifacts/dashboard-review.png.
"""

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.review.service import ReviewService

from tests.dashboard_helpers import PASSWORDS, dashboard_app, make_users, seed_job, serving

if TYPE_CHECKING:
    from playwright.async_api import Page

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
    async with serving(dashboard_app(service, tmp_path / "users.toml")) as address:
        yield address, service


def filter_of(selector: str) -> str:
    return f"document.querySelector('{selector}') && getComputedStyle(document.querySelector('{selector}')).filter"


class Console:
    """Every error a page reports: console errors (Chromium logs each CSP violation there),
    uncaught script errors, and ``securitypolicyviolation`` events."""

    # Runs in every document before the page's own scripts (injected by the browser, not by
    # the page, so the CSP does not apply to it).
    LISTENER = """
      document.addEventListener("securitypolicyviolation", (e) =>
        console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`));
    """

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def watch(self, page: "Page") -> None:
        await page.add_init_script(self.LISTENER)
        page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        # Chromium's console line for a failed load does not name the URL: note it here.
        page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    def csp_violations(self) -> list[str]:
        return [e for e in self.errors if "Content Security Policy" in e or "CSP violation" in e]


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
        console = Console()
        await console.watch(page)
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
        bars = await page.evaluate("[...document.querySelectorAll('svg.bar rect')].map(r => r.getBBox().width)")
        assert len(bars) == 3 and max(bars) > 0  # score bars drawn without any style attribute
        assert console.errors == []  # the review page's script ran under the CSP, and nothing was blocked

        # An admin's pages (statistics, sessions, appeals) under the same policy.
        admin = await browser.new_page()
        await console.watch(admin)
        await admin.goto(f"{base}/login")
        await admin.fill("input[name=username]", "ada")
        await admin.fill("input[name=password]", PASSWORDS["ada"])
        await admin.click("button[type=submit]")
        await admin.wait_for_url(f"{base}/")
        await admin.goto(f"{base}/admin/stats")
        await admin.goto(f"{base}/admin/sessions")
        assert await admin.locator("tr", has_text="rita").count() == 1
        await admin.goto(f"{base}/appeals")
        assert await admin.locator("h1", has_text="Open appeals").count() == 1
        assert console.errors == []

        # The policy is really in force: an inline script slipped into the page is refused,
        # and the watch above would have seen it.
        async with admin.expect_console_message(lambda m: "CSP violation" in m.text):
            await admin.evaluate(
                "() => { const s = document.createElement('script');"
                " s.textContent = 'window.injected = true'; document.body.append(s); }"
            )
        assert await admin.evaluate("window.injected === undefined")
        assert console.csp_violations()
        await browser.close()

    closed = await service.job(first.job_id)
    assert closed is not None and closed[2] == "closed"
    verdicts = [
        e for e in await service.audit_entries(actor="rita", action="verdict") if e.details["job"] == first.job_id
    ]
    assert verdicts and verdicts[0].details["verdict"] == "approve"
    assert SCREENSHOT.stat().st_size > 10_000
