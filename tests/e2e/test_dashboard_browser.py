"""A reviewer in a real browser: log in, open a queue, reveal, approve with the keyboard, next job;
and the text read in an image, highlighted and boxed over it, shielded with it.

All of it under the dashboard's Content-Security-Policy: the review page's script runs, and
no page causes a CSP violation (or any other console error). Headless Chromium from Debian
(scripts/install-chromium), driven by Playwright. Screenshots of the review page are written
to artifacts/dashboard-review.png and, for the text, artifacts/dashboard-review-text.png
(revealed) and artifacts/dashboard-review-text-shielded.png.
"""

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from modstream.core.events import TextMatch
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.review.service import ReviewService

from tests.dashboard_helpers import dashboard_app, make_users, seed_job, serving, sign_in, text_picture

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
TEXT_SCREENSHOT = PROJECT_ROOT / "artifacts" / "dashboard-review-text.png"
SHIELDED_TEXT_SCREENSHOT = PROJECT_ROOT / "artifacts" / "dashboard-review-text-shielded.png"


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
    seen_before = (await service.exposure_today("rita")).seen["standard"]
    first = await seed_job(service.settings, service, "browser-1", "browser", score=0.9)
    second = await seed_job(service.settings, service, "browser-2", "browser", score=0.5)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        console = Console()
        await console.watch(page)
        await page.goto(f"{base}/jobs/{first.job_id}")
        assert page.url == f"{base}/login"  # no session, no page

        await sign_in(page, base, "rita")
        row = page.locator("tr", has_text="browser")
        assert await row.locator("td.num").first.inner_text() == "2"
        await row.locator("button", has_text="Start reviewing").click()
        await page.wait_for_url(f"{base}/jobs/{first.job_id}")
        await page.wait_for_function("document.querySelector('#subject').complete")
        assert await page.evaluate("document.querySelector('#subject').naturalWidth") > 0

        # Blurred and grayscale by default; unblurring (held) and colour (a toggle) are separate.
        assert await page.evaluate(filter_of("#subject")) == "blur(20px) grayscale(1)"
        await page.keyboard.down(" ")
        assert await page.evaluate(filter_of("#subject")) == "blur(0px) grayscale(1)"
        await page.keyboard.up(" ")
        assert await page.evaluate(filter_of("#subject")) == "blur(20px) grayscale(1)"
        await page.keyboard.press("c")
        assert await page.evaluate(filter_of("#subject")) == "blur(20px) grayscale(0)"
        assert await page.get_attribute("#colour", "aria-pressed") == "true"
        await page.click("#colour")
        assert await page.evaluate(filter_of("#subject")) == "blur(20px) grayscale(1)"

        # The time held unblurred goes to rita's exposure counters (the space press above too).
        before = (await service.exposure_today("rita")).unblurred_seconds["standard"]
        await page.hover("#reveal")
        await page.mouse.down()
        await page.wait_for_timeout(1500)
        await page.mouse.up()
        for _ in range(150):  # the report is sent on release; a loaded machine may take seconds to answer
            counted = (await service.exposure_today("rita")).unblurred_seconds["standard"] - before
            if counted > 0:
                break
            await page.wait_for_timeout(100)
        assert 1.3 <= counted <= 4.0, counted

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

        # rita's own counters on the queue list: the two images she was shown here (the session's
        # Redis counts the whole day's, other tests' included).
        await page.goto(f"{base}/")
        mine = await page.inner_text("section.exposure-mine")
        assert f"severe and {seen_before + 2} other images" in mine, mine

        # An admin's pages (statistics, sessions, appeals) under the same policy.
        admin = await browser.new_page()
        await console.watch(admin)
        await sign_in(admin, base, "ada")
        await admin.goto(f"{base}/admin/stats")
        await admin.goto(f"{base}/admin/exposure")
        assert await admin.locator('tr[data-reviewer="rita"]').count() == 1
        await admin.goto(f"{base}/admin/gold")
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


# Each box's place over the image, as fractions of the image's rendered size (as a box is given).
BOXES_OVER_IMAGE = """() => {
  const image = document.querySelector('#subject').getBoundingClientRect();
  const overlay = document.querySelector('svg.text-boxes').getBoundingClientRect();
  const boxes = [...document.querySelectorAll('svg.text-boxes rect')].map((rect) => {
    const r = rect.getBoundingClientRect();
    return [(r.left - image.left) / image.width, (r.top - image.top) / image.height,
            (r.right - image.left) / image.width, (r.bottom - image.top) / image.height];
  });
  const offsets = [overlay.left - image.left, overlay.top - image.top,
                   overlay.width - image.width, overlay.height - image.height];
  return {boxes, offsets, matched: document.querySelectorAll('svg.text-boxes rect.matched').length};
}"""


async def test_the_text_read_is_highlighted_and_boxed_over_the_image_and_shielded_with_it(
    served: tuple[str, ReviewService],
) -> None:
    from playwright.async_api import async_playwright

    base, service = served
    lines = [
        "FREE CRYPTO GIVEAWAY",
        "visit scam-coin.example",
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
    ]
    picture, reading = text_picture(lines)
    matches = [
        TextMatch(label="text.scam", rule="term:free crypto", line=0, start=0, end=11, confidence=0.96),
        TextMatch(label="text.url", rule="url:scam-coin.example", line=1, start=6, end=23, confidence=0.96),
    ]
    job = await seed_job(
        service.settings, service, "browser-text-1", "text", 0.9, image=picture, text=reading, text_matches=matches
    )
    # Shrunk to fit by height, then by width: the boxes must still land on the words.
    others = {}
    for name, score, (width, height) in (("tall", 0.6, (420, 1800)), ("wide", 0.5, (2600, 420))):
        shape_picture, shape_reading = text_picture(lines[:2], width, height)
        others[name] = (
            await seed_job(
                service.settings, service, f"browser-text-{name}", "text", score, shape_picture, text=shape_reading
            ),
            shape_reading,
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        console = Console()
        await console.watch(page)
        await sign_in(page, base, "rita")
        await page.locator("tr", has_text="text").locator("button", has_text="Start reviewing").click()
        await page.wait_for_url(f"{base}/jobs/{job.job_id}")
        await page.wait_for_function("document.querySelector('#subject').complete")

        # The lines, the matched spans highlighted, each match's label named; the hostile lines
        # are text on the page, never elements.
        assert await page.is_visible("#text")
        marks = await page.eval_on_selector_all(".text-read mark", "ms => ms.map(m => [m.textContent, m.title])")
        assert marks == [
            ["FREE CRYPTO", "text.scam (term:free crypto)"],
            ["scam-coin.example", "text.url (url:scam-coin.example)"],
        ]
        shown = await page.eval_on_selector_all(".text-read .line-text", "ls => ls.map(l => l.textContent)")
        assert shown == lines
        assert await page.locator(".text-read script, .text-read img").count() == 0
        assert await page.eval_on_selector_all(".text-read .tag", "ts => ts.map(t => t.textContent)") == [
            "text.scam",
            "text.url",
        ]

        # The boxes frame the words where the picture has them: the overlay is the image's size,
        # each rect at its line's fractions of it.
        placed = await page.evaluate(BOXES_OVER_IMAGE)
        assert placed["offsets"] == pytest.approx([0, 0, 0, 0], abs=1)
        assert placed["matched"] == 2
        for box, line in zip(placed["boxes"], reading.lines, strict=True):
            assert box == pytest.approx(list(line.box), abs=0.005)

        # Shielded with the image until revealed: blurred, and no tooltip of a match's rule.
        for selector in ("#subject", "svg.text-boxes", ".text-read"):
            assert "blur" in await page.evaluate(filter_of(selector)), selector
        mark = "getComputedStyle(document.querySelector('.text-read mark')).pointerEvents"
        assert await page.evaluate(mark) == "none"
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SHIELDED_TEXT_SCREENSHOT), full_page=True)
        await page.keyboard.down(" ")
        for selector in ("#subject", "svg.text-boxes", ".text-read"):
            assert await page.evaluate(filter_of(selector)) == "blur(0px) grayscale(1)", selector
        assert await page.evaluate(mark) == "auto"
        await page.screenshot(path=str(TEXT_SCREENSHOT), full_page=True)
        await page.keyboard.up(" ")
        assert "blur" in await page.evaluate(filter_of(".text-read"))

        # A verdict names the text label (ticked here), and the next jobs load.
        await page.check("input[name=labels][value='text.scam']")
        await page.click("#remove")
        for name, (other, other_reading) in others.items():
            await page.wait_for_url(f"{base}/jobs/{other.job_id}")
            await page.wait_for_function("document.querySelector('#subject').complete")
            placed = await page.evaluate(BOXES_OVER_IMAGE)
            assert placed["offsets"] == pytest.approx([0, 0, 0, 0], abs=1), name
            for box, line in zip(placed["boxes"], other_reading.lines, strict=True):
                assert box == pytest.approx(list(line.box), abs=0.005), name
            await page.keyboard.press("a")
        await page.wait_for_url(f"{base}/?notice=done")
        assert console.errors == []
        await browser.close()

    verdicts = [
        e for e in await service.audit_entries(actor="rita", action="verdict") if e.details["job"] == job.job_id
    ]
    assert verdicts and verdicts[0].details["verdict"] == "remove"
    assert TEXT_SCREENSHOT.stat().st_size > 10_000 and SHIELDED_TEXT_SCREENSHOT.stat().st_size > 10_000
