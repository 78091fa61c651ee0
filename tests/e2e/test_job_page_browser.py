"""The job page in Chromium: every label name whole and the model version wrapped, at 1,280 px and
on a 768 px tablet; and the heat map of where the model looked, toggled over the still shielded
image, made by the session's Triton, under the dashboard's CSP.

Screenshots: artifacts/job-page-1280.png, artifacts/job-page-768.png (the tablet) and
artifacts/job-page-heat-map.png (the map of ``alcohol`` over the composite, blurred).
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from modstream.core.inference import TritonScorer
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.storage import ObjectStore
from modstream.explain.store import maps_on_demand
from modstream.review.jobs import ReviewJob
from modstream.review.service import ReviewService

from tests import composite
from tests.dashboard_helpers import dashboard_app, make_users, serving, sign_in
from tests.e2e.test_dashboard_browser import CHROMIUM, FLAGS, Console, filter_of

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
ARTIFACTS = PROJECT_ROOT / "artifacts"
QUEUE = "job-page"

# Every score label clipped or not, and the version past the page's right edge or not.
LAYOUT = """() => {
  const labels = [...document.querySelectorAll('.bars .label')];
  const version = document.querySelector('#model-version').getBoundingClientRect();
  return {
    labels: labels.length,
    clipped: labels.filter((l) => l.scrollWidth > l.clientWidth || l.getBoundingClientRect().right > innerWidth)
                   .map((l) => l.textContent),
    versionRight: version.right, width: innerWidth,
    pageWidth: document.documentElement.scrollWidth,
  };
}"""


@pytest.fixture
async def served(stack_settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[str, ReviewService]]:
    service = ReviewService(stack_settings)
    service.queues._prefix = "job-page-browser:"
    make_users(tmp_path / "users.toml")
    app = dashboard_app(service, tmp_path / "users.toml", explain=maps_on_demand(stack_settings))
    async with serving(app) as address:
        yield address, service


async def composite_job(service: ReviewService) -> ReviewJob:
    """The composite as the served ensemble decided it, with a text label of the policy's, held by rita."""
    settings = service.settings
    image, _ = composite.two_label_image()
    scorer = TritonScorer(settings.triton_grpc, settings.triton_model, settings.inference_timeout)
    try:
        scores = await scorer.score(image)
    finally:
        await scorer.close()
    key = f"job-page/{datetime.now(UTC):%H%M%S%f}"
    ObjectStore(settings).put(settings.uploads_bucket, key, image, "image/png")
    job = ReviewJob(
        job_id=key.replace("/", "-"),
        queue=QUEUE,
        decision_id="auto-job-page",
        tenant="t",
        bucket=settings.uploads_bucket,
        key=key,
        scores={**scores.by_label, "text.scam": 0.0},
        triggered=[],
        reasons=["audit_sample"],
        model=scores.model,
        policy_id="default",
        policy_version="test",
        uploaded_at=datetime.now(UTC),
        enqueued_at=datetime.now(UTC),
    )
    assert await service.queues.enqueue(job)
    claimed = await service.claim_next(QUEUE, "rita")
    assert claimed is not None and claimed[0].job_id == job.job_id
    return job


async def layout_holds(page: "Page", screenshot: Path) -> None:
    await page.wait_for_function("document.querySelector('#subject').complete")
    found = await page.evaluate(LAYOUT)
    await page.screenshot(path=str(screenshot), full_page=True)
    assert found["labels"] > 10 and found["clipped"] == [], found
    assert found["versionRight"] <= found["width"] and found["pageWidth"] <= found["width"], found


async def test_labels_whole_versions_wrapped_and_the_heat_map_toggled(served: tuple[str, ReviewService]) -> None:
    from playwright.async_api import async_playwright

    base, service = served
    job = await composite_job(service)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        console = Console()
        await console.watch(page)
        await sign_in(page, base, "rita")
        await page.goto(f"{base}/jobs/{job.job_id}")
        await layout_holds(page, ARTIFACTS / "job-page-1280.png")
        await page.set_viewport_size({"width": 768, "height": 1024})
        await layout_holds(page, ARTIFACTS / "job-page-768.png")
        await page.set_viewport_size({"width": 1280, "height": 900})

        # Toggled on for alcohol: made by the models that decided, drawn over the image, which
        # stays blurred; the left half (where the composite's alcohol is) is the redder one.
        await page.select_option("#heat-label", "alcohol")
        await page.click("#heat-toggle")
        await page.wait_for_selector("#heat rect", state="attached", timeout=60_000)
        assert await page.is_visible("#heat")
        assert "blur" in await page.evaluate(filter_of("#subject"))
        status = await page.inner_text("#heat-status")
        assert status.startswith("alcohol (score 0.94") and "occlusion-7x7-48px" in status, status
        halves = await page.evaluate(
            "[...document.querySelectorAll('#heat rect')].reduce((h, r) => {"
            " h[Number(r.getAttribute('x') >= 7)] += Number(r.getAttribute('fill-opacity')); return h; }, [0, 0])"
        )
        assert halves[0] > 3 * halves[1], halves
        await page.screenshot(path=str(ARTIFACTS / "job-page-heat-map.png"), full_page=True)

        # Another label from the same maps; a text label has none, and the page says why.
        await page.select_option("#heat-label", "sexual.suggestive")
        await page.wait_for_function("document.querySelector('#heat-status').textContent.startsWith('sexual.sugg')")
        assert "(kept)" not in await page.inner_text("#heat-status")  # fetched once, drawn again
        await page.select_option("#heat-label", "text.scam")
        await page.wait_for_function("document.querySelector('#heat-status').textContent.includes('no occlusion')")
        assert "text rules" in await page.inner_text("#heat-status") and not await page.is_visible("#heat")
        await page.click("#heat-toggle")  # off
        await page.select_option("#heat-label", "alcohol")
        assert not await page.is_visible("#heat") and await page.inner_text("#heat-status") == ""

        # Asked again (another page load): the kept maps, not made again.
        await page.reload()
        await page.select_option("#heat-label", "alcohol")
        await page.click("#heat-toggle")
        await page.wait_for_selector("#heat rect", state="attached", timeout=30_000)
        assert "(kept)" in await page.inner_text("#heat-status")
        assert console.errors == []  # no CSP violation, no failed request, no script error
        await browser.close()
