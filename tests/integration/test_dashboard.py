"""Dashboard security and reviewing, over HTTP, on a real review service (Redis, Kafka, S3)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from modstream.core.settings import Settings
from modstream.review.service import ReviewService

from tests.dashboard_helpers import csrf_of, dashboard, log_in, make_users, seed_job

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(stack_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[ReviewService]:
    service = ReviewService(stack_settings)
    service.queues._prefix = f"dash-test:{request.node.name}:"  # a queue namespace per test
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
def users(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "users.toml"
    return path, make_users(path)


async def test_nothing_without_a_session(service: ReviewService, users: tuple[Path, dict[str, str]]) -> None:
    job = await seed_job(service.settings, service, "j1", "q")
    async with dashboard(service, users[0]) as client:
        for page in ("/", f"/jobs/{job.job_id}", "/settings", "/admin/audit", "/admin/stats"):
            response = await client.get(page)
            assert (response.status_code, response.headers["location"]) == (303, "/login"), page
        assert (await client.get(f"/jobs/{job.job_id}/image")).status_code == 401
        assert (await client.get("/api/queues")).status_code == 401
        assert (await client.post("/api/queues/q/claim")).status_code == 401
        assert (await client.get("/api/queues", headers={"authorization": "Bearer rita.forged"})).status_code == 401


async def test_login_logout_and_failed_logins_are_audited(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    async with dashboard(service, users[0]) as client:
        form = await client.get("/login")
        wrong = await client.post("/login", data={"username": "rita", "password": "nope", "csrf": csrf_of(form.text)})
        assert wrong.status_code == 200 and "Wrong name or password" in wrong.text
        assert "modstream_session" not in client.cookies
        no_csrf = await client.post("/login", data={"username": "rita", "password": "rita-password"})
        assert no_csrf.status_code in (403, 422)
        csrf = await log_in(client, "rita")
        assert (await client.get("/")).status_code == 200
        assert (await client.post("/logout", data={"csrf": csrf})).status_code == 303
        assert (await client.get("/")).status_code == 303
    actions = [(e.actor, e.action) for e in await service.audit_entries(limit=20)]
    assert ("rita", "login_failed") in actions and ("rita", "login") in actions and ("rita", "logout") in actions


async def test_reviewers_get_403_on_admin_pages_and_admins_get_them(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    async with dashboard(service, users[0]) as reviewer:
        await log_in(reviewer, "rita")
        assert (await reviewer.get("/admin/audit")).status_code == 403
        assert (await reviewer.get("/admin/stats")).status_code == 403
    async with dashboard(service, users[0]) as admin:
        await log_in(admin, "ada")
        audit = await admin.get("/admin/audit", params={"actor": "rita", "action": "login"})
        assert audit.status_code == 200 and "rita" in audit.text
        assert (await admin.get("/admin/stats")).status_code == 200


async def test_forged_posts_without_the_csrf_token_change_nothing(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    await seed_job(service.settings, service, "j1", "q")
    async with dashboard(service, users[0]) as client:
        csrf = await log_in(client, "rita")
        assert (await client.post("/queues/q/claim")).status_code == 403
        assert (await client.post("/queues/q/claim", data={"csrf": "not-the-token"})).status_code == 403
        foreign = await client.post("/queues/q/claim", data={"csrf": csrf}, headers={"origin": "https://evil.example"})
        assert foreign.status_code == 403
        (stats,) = await service.queue_stats()
        assert (stats.pending, stats.in_review) == (1, 0)
        assert (await client.post("/settings", data={"blur": "none"})).status_code == 403
        # A cookie session does not open the JSON API (it would be forgeable cross-site).
        assert (await client.post("/api/queues/q/claim")).status_code == 401


async def test_review_a_queue_the_next_job_loads_and_others_cannot_touch_it(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    first = await seed_job(service.settings, service, "j-high", "q", score=0.8)
    second = await seed_job(service.settings, service, "j-low", "q", score=0.5)
    async with dashboard(service, users[0]) as rita, dashboard(service, users[0]) as remy:
        csrf = await log_in(rita, "rita")
        await log_in(remy, "remy")
        claimed = await rita.post("/queues/q/claim", data={"csrf": csrf})
        assert claimed.headers["location"] == f"/jobs/{first.job_id}"  # highest score first
        page = await rita.get(f"/jobs/{first.job_id}")
        assert page.status_code == 200 and 'class="shielded"' in page.text and "nsfw" in page.text
        image = await rita.get(f"/jobs/{first.job_id}/image")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.headers["cache-control"] == "no-store"

        assert (await remy.get(f"/jobs/{first.job_id}")).status_code == 403
        assert (await remy.get(f"/jobs/{first.job_id}/image")).status_code == 403
        remy_csrf = csrf_of((await remy.get("/")).text)
        stolen = await remy.post(f"/jobs/{first.job_id}/verdict", data={"csrf": remy_csrf, "verdict": "approve"})
        assert stolen.status_code == 403

        done = await rita.post(f"/jobs/{first.job_id}/verdict", data={"csrf": csrf, "verdict": "remove", "note": "n"})
        assert done.headers["location"] == f"/jobs/{second.job_id}"  # the next job loads by itself
        skipped = await rita.post(f"/jobs/{second.job_id}/skip", data={"csrf": csrf})
        assert skipped.headers["location"] == "/?notice=empty"
    found = await service.job(first.job_id)
    assert found is not None and found[2] == "closed"
    found = await service.job(second.job_id)
    assert found is not None and found[2] == "pending"  # skipped: back in its queue
    actions = [e.action for e in await service.audit_entries(actor="rita", limit=50)]
    assert {"claim", "verdict", "release"} <= set(actions)


async def test_blur_level_is_a_per_user_setting(service: ReviewService, users: tuple[Path, dict[str, str]]) -> None:
    job = await seed_job(service.settings, service, "j1", "q")
    async with dashboard(service, users[0]) as client:
        csrf = await log_in(client, "rita")
        assert (await client.post("/settings", data={"csrf": csrf, "blur": "high"})).status_code == 303
        await client.post("/queues/q/claim", data={"csrf": csrf})
        assert "--blur: 40px" in (await client.get(f"/jobs/{job.job_id}")).text
    assert any(e.action == "settings" for e in await service.audit_entries(actor="rita"))
