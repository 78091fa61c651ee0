"""Dashboard security and reviewing, over HTTP, on a real review service (Redis, Kafka, S3)."""

import asyncio
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from modstream.core.appeals import AppealRules
from modstream.core.events import AppealLodged, ModerationDecision, TextMatch
from modstream.review.appeals import appeal_job
from modstream.review.jobs import LABELLING_INFIX, Verdict, VerdictInput
from modstream.review.service import ReviewService
from modstream.review.web.sessions import session_id
from PIL import Image

from tests import images
from tests.dashboard_helpers import (
    PASSWORDS,
    csrf_of,
    dashboard,
    dashboard_app,
    log_in,
    seed_job,
    text_picture,
    try_log_in,
)

pytestmark = pytest.mark.integration


async def test_nothing_without_a_session(service: ReviewService, users: tuple[Path, dict[str, str]]) -> None:
    job = await seed_job(service.settings, service, "j1", "q")
    async with dashboard(service, users[0]) as client:
        for page in ("/", "/appeals", f"/jobs/{job.job_id}", "/settings", "/admin/audit", "/admin/stats"):
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
        assert no_csrf.status_code == 403
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
        assert claimed.headers["location"] == f"/jobs/{first.job_id}"  # queued first: due first
        page = await rita.get(f"/jobs/{first.job_id}")
        assert page.status_code == 200 and 'class="shielded blur-medium"' in page.text and "nsfw" in page.text
        # The verdict asks for the label set: the triggered label ticked, the others offered.
        boxes = dict(re.findall(r'name="labels" value="(\w+)"( checked)?', page.text))
        assert boxes == {"nsfl": "", "nsfw": " checked", "sfw": ""}
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


async def test_phones_heic_and_tiff_are_shown_as_png_and_a_hostile_one_is_refused(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    photo = Image.radial_gradient("L").convert("RGB").resize((120, 80))
    seeded = {
        "heic": await seed_job(service.settings, service, "j-heic", "formats", score=0.9, image=images.heif(photo)),
        "tiff": await seed_job(
            service.settings, service, "j-tiff", "formats", score=0.8, image=images.encode(photo, "TIFF")
        ),
        "bomb": await seed_job(
            service.settings, service, "j-bomb", "formats", score=0.7, image=images.tiff_claiming(8_000, 8_000)
        ),
    }
    async with dashboard(service, users[0]) as ada:
        await log_in(ada, "ada")  # an admin sees any job's image
        answers = {name: await ada.get(f"/jobs/{job.job_id}/image") for name, job in seeded.items()}
    for name in ("heic", "tiff"):
        assert answers[name].status_code == 200 and answers[name].headers["content-type"] == "image/png", name
        with Image.open(io.BytesIO(answers[name].content)) as shown:
            assert shown.format == "PNG" and shown.size == photo.size
    assert answers["bomb"].status_code == 415 and "8000x8000 is over" in answers["bomb"].text


async def test_blur_level_is_a_per_user_setting(service: ReviewService, users: tuple[Path, dict[str, str]]) -> None:
    job = await seed_job(service.settings, service, "j1", "q")
    async with dashboard(service, users[0]) as client:
        csrf = await log_in(client, "rita")
        assert (await client.post("/settings", data={"csrf": csrf, "blur": "high"})).status_code == 303
        await client.post("/queues/q/claim", data={"csrf": csrf})
        assert 'class="shielded blur-high"' in (await client.get(f"/jobs/{job.job_id}")).text
    assert any(e.action == "settings" for e in await service.audit_entries(actor="rita"))


async def test_a_wrong_login_csrf_token_is_refused_with_403(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    """The token comparison itself: well-formed tokens that are not this browser's get 403, exactly."""
    async with dashboard(service, users[0]) as client, dashboard(service, users[0]) as other:
        right = csrf_of((await client.get("/login")).text)
        anothers = csrf_of((await other.get("/login")).text)  # a real token, of another browser
        one_off = right[:-1] + ("A" if right[-1] != "A" else "B")
        for token in (anothers, one_off, "é" * len(right)):
            assert token != right
            refused = await client.post(
                "/login", data={"username": "rita", "password": PASSWORDS["rita"], "csrf": token}
            )
            assert refused.status_code == 403, token
            assert "modstream_session" not in client.cookies
        # The very same post with this browser's token signs in.
        signed_in = await client.post("/login", data={"username": "rita", "password": PASSWORDS["rita"], "csrf": right})
        assert signed_in.status_code == 303


async def test_posts_are_judged_by_sec_fetch_site_as_browsers_send_no_referrer_here(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    """Under ``Referrer-Policy: no-referrer`` a browser posts with ``Origin: null`` and no
    Referer; ``Sec-Fetch-Site`` still says where the post comes from."""
    job = await seed_job(service.settings, service, "j1", "q")
    cross_site = {"origin": "null", "sec-fetch-site": "cross-site"}
    same_origin = {"origin": "null", "sec-fetch-site": "same-origin"}
    async with dashboard(service, users[0]) as client:
        form = csrf_of((await client.get("/login")).text)
        login = {"username": "rita", "password": PASSWORDS["rita"], "csrf": form}
        assert (await client.post("/login", data=login, headers=cross_site)).status_code == 403
        assert (await client.post("/login", data=login, headers=same_origin)).status_code == 303
        csrf = csrf_of((await client.get("/")).text)
        assert (await client.post("/queues/q/claim", data={"csrf": csrf}, headers=cross_site)).status_code == 403
        claimed = await client.post("/queues/q/claim", data={"csrf": csrf}, headers=same_origin)
        assert (claimed.status_code, claimed.headers["location"]) == (303, f"/jobs/{job.job_id}")


# --- under attack: headers, sign-in throttling, sessions --------------------------------

SECURITY_HEADERS = {"x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
COOKIE_DOMAIN = "testserver.local"  # where httpx keeps the cookies of http://testserver


def assert_protected(response: httpx.Response, cache: str = "no-store") -> None:
    where = f"{response.request.method} {response.request.url.path} → {response.status_code}"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (where, name)
    policy = dict(
        directive.strip().split(" ", 1) for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'", where
    assert (policy["script-src"], policy["style-src"], policy["img-src"]) == ("'self'", "'self'", "'self'"), where
    assert (policy["frame-ancestors"], policy["form-action"]) == ("'none'", "'self'"), where
    assert response.headers.get("cache-control") == cache, where


async def test_security_headers_on_pages_images_static_files_redirects_errors_and_the_api(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    job = await seed_job(service.settings, service, "j1", "q")
    app = dashboard_app(service, users[0])

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)  # Starlette's own 500 answer, outside every route
    async with dashboard(service, users[0], app=app, raise_app_exceptions=False) as client:
        anonymous = [
            await client.get("/login"),
            await client.get("/"),  # redirect to sign in
            await client.get(f"/jobs/{job.job_id}/image"),
            await client.get("/api/queues"),
            await client.get("/no-such-page"),
            await client.post("/login", data={"username": "rita", "password": "x", "csrf": "wrong"}),
            await client.get("/broken"),
        ]
        assert [r.status_code for r in anonymous] == [200, 303, 401, 401, 404, 403, 500]
        for response in anonymous:
            assert_protected(response)
        for path in ("/static/review.js", "/static/dashboard.css"):
            static = await client.get(path)
            assert static.status_code == 200
            assert_protected(static, cache="no-cache")  # kept, but asked again each time (ETag)

        csrf = await log_in(client, "rita")
        claimed = await client.post("/queues/q/claim", data={"csrf": csrf})
        page = await client.get(claimed.headers["location"])
        image = await client.get(f"/jobs/{job.job_id}/image")
        assert (claimed.status_code, page.status_code, image.status_code) == (303, 200, 200)
        assert image.headers["content-type"] == "image/png"
        for response in (claimed, page, image):
            assert_protected(response)

    async with dashboard(service, users[0]) as api:
        bearer = {"authorization": f"Bearer {users[1]['rita']}"}
        queues = await api.get("/api/queues", headers=bearer)
        invalid = await api.post(f"/api/jobs/{job.job_id}/verdict", headers=bearer, json={"verdict": "maybe"})
        assert (queues.status_code, invalid.status_code) == (200, 422)
        for response in (queues, invalid):
            assert_protected(response)


# An inline <script>, a <style> element, and style / on… attributes or javascript: URLs inside a tag.
INLINE = re.compile(
    r"<script(?![^>]*\ssrc=)|<style|<[^>]*\s(?:style|on[a-z]+)\s*=|<[^>]*=\s*\"?\s*javascript:", re.IGNORECASE
)


async def test_no_page_has_inline_script_style_or_handlers(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    """What the CSP would block: every page renders without any of it."""
    job = await seed_job(service.settings, service, "j1", "q")
    async with dashboard(service, users[0]) as client:
        pages = {"/login": (await client.get("/login")).text}
        csrf = await log_in(client, "ada")
        await client.post("/queues/q/claim", data={"csrf": csrf})
        admin = ("/admin/audit", "/admin/stats", "/admin/sessions")
        for path in ("/", "/appeals", f"/jobs/{job.job_id}", "/settings", *admin):
            response = await client.get(path)
            assert response.status_code == 200, path
            pages[path] = response.text
    assert "<svg" in pages[f"/jobs/{job.job_id}"]  # score bars drawn without style attributes
    for path, html in pages.items():
        found = INLINE.search(html)
        assert found is None, (path, html[max(found.start() - 80, 0) : found.end() + 80] if found else "")


async def test_the_text_read_is_shown_escaped_highlighted_and_boxed_and_again_on_the_appeal(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    hostile = ["FREE CRYPTO GIVEAWAY", "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']
    picture, reading = text_picture(hostile)
    scam = TextMatch(label="text.scam", rule="term:free crypto", line=0, start=0, end=11, confidence=0.96)
    job = await seed_job(service.settings, service, "j-text", "text", image=picture, text=reading, text_matches=[scam])
    async with dashboard(service, users[0]) as rita, dashboard(service, users[0]) as ada:
        csrf = await log_in(rita, "rita")
        await rita.post("/queues/text/claim", data={"csrf": csrf})
        page = (await rita.get(f"/jobs/{job.job_id}")).text
        assert '<mark title="text.scam (term:free crypto)">FREE CRYPTO</mark> GIVEAWAY' in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
        assert "<script>alert" not in page and "<img src=x" not in page and INLINE.search(page) is None
        rects = re.findall(r'<rect x="([\d.]+)%" y="([\d.]+)%" width="([\d.]+)%" height="([\d.]+)%"', page)
        expected = [(b[0], b[1], b[2] - b[0], b[3] - b[1]) for b in (line.box for line in reading.lines)]
        shown = [float(v) for rect in rects for v in rect]
        assert shown == pytest.approx([100 * v for box in expected for v in box], abs=0.02)
        assert page.count('class="matched"') == 2  # the matched line's box and its line in the panel
        # Shielded as the image is, at the reviewer's blur level.
        assert 'class="text-boxes shielded blur-medium"' in page and 'class="text-read shielded blur-medium"' in page
        assert "text.scam" in dict(re.findall(r'name="labels" value="([\w.]+)"( checked)?', page))

        # Rita removes it; the uploader appeals. The appeal is heard on her decision, which kept the text.
        decided = await service.submit(job.job_id, "rita", VerdictInput(verdict=Verdict.REMOVE, labels=["text.scam"]))
        assert isinstance(decided, ModerationDecision) and decided.text == reading
        lodged = AppealLodged(
            event_id=job.event_id, tenant="t", appellant="uploader", appellant_id="u-1", reason="satire"
        )
        appeal = appeal_job(lodged, decided, AppealRules(queue="text-appeals"), datetime.now(UTC))
        assert await service.queues.enqueue(appeal, excluded=["rita"])
        await log_in(ada, "ada")  # an admin sees any job
        heard = (await ada.get(f"/jobs/{appeal.job_id}")).text
        assert 'id="appeal"' in heard and heard.count("<mark") == 1 and "&lt;script&gt;" in heard
        assert heard.count("<rect x=") == len(hostile)


async def test_the_eleventh_failed_sign_in_is_refused_even_with_the_right_password(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    limit = service.settings.dashboard_login_failures_per_user
    assert limit == 10  # the default this test is about
    async with dashboard(service, users[0], address="10.1.0.1") as guesser:
        for _ in range(limit):
            wrong = await try_log_in(guesser, "rita", "a-guess")
            assert wrong.status_code == 200 and "Wrong name or password" in wrong.text
        eleventh = await try_log_in(guesser, "rita", "another-guess")
        assert eleventh.status_code == 429
        assert "Too many failed sign-ins for this name. Try again in 15 minutes." in eleventh.text
    # The limit is the name's: the right password from another address is refused as well.
    async with dashboard(service, users[0], address="10.1.0.2") as rita:
        refused = await try_log_in(rita, "rita", PASSWORDS["rita"])
        assert refused.status_code == 429 and "Too many failed sign-ins for this name" in refused.text
        assert 800 < int(refused.headers["retry-after"]) <= 900
        assert_protected(refused)
        assert "modstream_session" not in rita.cookies
    # Other names from the guesser's address are not this limit's business.
    async with dashboard(service, users[0], address="10.1.0.1") as remy:
        await log_in(remy, "remy")
    throttled = await service.audit_entries(actor="rita", action="login_throttled", limit=100)
    by_address = {e.details["address"]: e.details for e in throttled}
    assert by_address["10.1.0.1"]["limit"] == "user" and by_address["10.1.0.2"]["limit"] == "user"
    failed = await service.audit_entries(actor="rita", action="login_failed", limit=100)
    assert sum(e.details.get("address") == "10.1.0.1" for e in failed) == limit  # refusals are not failures


async def test_parallel_guesses_do_not_slip_past_the_limit(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    """Each attempt is counted before its (slow) password check, so 20 at once get 10 answers."""
    async with dashboard(service, users[0], address="10.5.0.1") as guesser:
        csrf = csrf_of((await guesser.get("/login")).text)
        answers = await asyncio.gather(
            *(
                guesser.post("/login", data={"username": "remy", "password": f"guess-{i}", "csrf": csrf})
                for i in range(20)
            )
        )
    assert sorted(a.status_code for a in answers) == [200] * 10 + [429] * 10


async def test_the_right_password_works_again_once_the_window_has_passed(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    window = 3.0
    service.settings = service.settings.model_copy(update={"dashboard_login_window_seconds": window})
    async with dashboard(service, users[0], address="10.2.0.1") as client:
        for _ in range(10):
            assert (await try_log_in(client, "remy", "a-guess")).status_code == 200
        refused = await try_log_in(client, "remy", PASSWORDS["remy"])
        assert refused.status_code == 429
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= window
        # Knocking on while refused (many more times than the limit within one window) does
        # not keep the lock closed: refusals are not counted.
        loop = asyncio.get_running_loop()
        started, answers = loop.time(), []
        while loop.time() - started < wait + 1.0:
            answer = await try_log_in(client, "remy", PASSWORDS["remy"])
            answers.append(answer.status_code)
            if answer.status_code == 303:
                break
            await asyncio.sleep(0.1)
        assert answers[-1] == 303 and set(answers[:-1]) == {429} and len(answers) > 10, answers
        assert (await client.get("/")).status_code == 200


async def test_one_address_trying_many_names_is_refused(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    per_address = service.settings.dashboard_login_failures_per_address
    async with dashboard(service, users[0], address="10.3.0.1") as sprayer:
        for i in range(per_address):  # one failure per name: no name's own limit is near
            assert (await try_log_in(sprayer, f"nobody-{i}", "a-guess")).status_code == 200
        refused = await try_log_in(sprayer, "remy", PASSWORDS["remy"])
        assert refused.status_code == 429
        assert "Too many failed sign-ins from this address" in refused.text
    async with dashboard(service, users[0], address="10.3.0.2") as elsewhere:
        await log_in(elsewhere, "remy")  # remy's name was never the problem
    entries = await service.audit_entries(actor="remy", action="login_throttled", limit=100)
    assert any(e.details["address"] == "10.3.0.1" and e.details["limit"] == "address" for e in entries)


async def test_signing_in_always_starts_a_new_session(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    async with dashboard(service, users[0]) as client:
        client.cookies.set("modstream_session", "planted-by-someone-else", domain=COOKIE_DOMAIN)
        await log_in(client, "rita")
        first = client.cookies["modstream_session"]
        assert first != "planted-by-someone-else"
        await log_in(client, "rita")  # again, now with a live session's cookie
        second = client.cookies["modstream_session"]
        assert second != first
    async with dashboard(service, users[0]) as old, dashboard(service, users[0]) as new:
        old.cookies.set("modstream_session", first, domain=COOKIE_DOMAIN)
        new.cookies.set("modstream_session", second, domain=COOKIE_DOMAIN)
        assert (await old.get("/")).status_code == 303  # the session from before sign-in ended
        assert (await new.get("/")).status_code == 200


async def test_an_admin_lists_sessions_and_ending_one_signs_it_out_at_once(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    job = await seed_job(service.settings, service, "j1", "q")
    async with (
        dashboard(service, users[0], address="10.4.0.1") as rita,
        dashboard(service, users[0], address="10.4.0.2") as ada,
    ):
        rita_csrf = await log_in(rita, "rita")
        await rita.post("/queues/q/claim", data={"csrf": rita_csrf})
        ada_csrf = await log_in(ada, "ada")
        cookie = rita.cookies["modstream_session"]
        rita_session = session_id(cookie)

        assert (await rita.get("/admin/sessions")).status_code == 403
        listing = await ada.get("/admin/sessions")
        assert listing.status_code == 200 and cookie not in listing.text  # ids, never cookie values
        rows = {row: re.sub(r"\s+", " ", row) for row in re.findall(r"<tr>.*?</tr>", listing.text, re.S)}
        (rita_row,) = [text for text in rows.values() if rita_session[:12] in text]
        assert "<td>rita</td>" in rita_row and "<td>reviewer</td>" in rita_row and "<td>10.4.0.1</td>" in rita_row
        assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td> <td>\d{4}-\d\d-\d\d", rita_row)  # created, seen
        assert any("<td>ada</td>" in text and "(this one)" in text for text in rows.values())

        # Forged or unauthorised revocations change nothing.
        assert (await ada.post(f"/admin/sessions/{rita_session}/revoke")).status_code == 403
        not_admin = await rita.post(f"/admin/sessions/{rita_session}/revoke", data={"csrf": rita_csrf})
        assert not_admin.status_code == 403
        assert (await rita.get("/")).status_code == 200

        ended = await ada.post(f"/admin/sessions/{rita_session}/revoke", data={"csrf": ada_csrf})
        assert (ended.status_code, ended.headers["location"]) == (303, "/admin/sessions?notice=revoked")
        assert (await rita.get("/")).headers["location"] == "/login"
        assert (await rita.get(f"/jobs/{job.job_id}/image")).status_code == 401
        verdict = await rita.post(f"/jobs/{job.job_id}/verdict", data={"csrf": rita_csrf, "verdict": "approve"})
        assert (verdict.status_code, verdict.headers["location"]) == (303, "/login")
        after = await ada.get(ended.headers["location"])
        assert rita_session[:12] not in after.text and "Session ended." in after.text
        assert (await ada.get("/")).status_code == 200  # only that session ended
        again = await ada.post(f"/admin/sessions/{rita_session}/revoke", data={"csrf": ada_csrf})
        assert again.headers["location"] == "/admin/sessions?notice=gone"
    found = await service.job(job.job_id)
    assert found is not None and found[2] == "leased"  # the verdict from the ended session did nothing
    revoked = await service.audit_entries(actor="ada", action="session_revoked", limit=100)
    assert any(e.details == {"user": "rita", "session": rita_session[:12], "address": "10.4.0.1"} for e in revoked)


async def test_an_admin_ends_every_session_of_one_user(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    async with (
        dashboard(service, users[0]) as laptop,
        dashboard(service, users[0]) as phone,
        dashboard(service, users[0]) as rita,
        dashboard(service, users[0]) as ada,
    ):
        await log_in(laptop, "remy")
        await log_in(phone, "remy")
        await log_in(rita, "rita")
        csrf = await log_in(ada, "ada")
        listing = (await ada.get("/admin/sessions", params={"user": "remy"})).text
        assert len(re.findall(r'action="/admin/sessions/[0-9a-f]{64}/revoke"', listing)) == 2
        ended = await ada.post("/admin/sessions/revoke-user", data={"csrf": csrf, "user": "remy"})
        assert ended.status_code == 303
        assert (await laptop.get("/")).status_code == 303 and (await phone.get("/")).status_code == 303
        assert (await rita.get("/")).status_code == 200 and (await ada.get("/")).status_code == 200
    revoked = await service.audit_entries(actor="ada", action="session_revoked", limit=100)
    assert sum(e.details["user"] == "remy" for e in revoked) == 2


async def test_a_labelling_job_says_what_it_is_for_and_its_verdict_decides_nothing(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    seeded = await seed_job(service.settings, service, "j-seeded", "elsewhere")  # its image, stored
    update = {"job_id": f"j-seeded{LABELLING_INFIX}emblem.red", "kind": "labelling", "queue": "label-q"}
    job = seeded.model_copy(update=update)
    assert await service.queues.enqueue(job)
    async with dashboard(service, users[0]) as rita:
        csrf = await log_in(rita, "rita")
        claimed = await rita.post("/queues/label-q/claim", data={"csrf": csrf})
        assert claimed.headers["location"] == f"/jobs/{job.job_id}"
        page = await rita.get(f"/jobs/{job.job_id}")
        assert 'id="labelling"' in page.text and "likeness to examples of emblem.red" in page.text
        done = await rita.post(f"/jobs/{job.job_id}/verdict", data={"csrf": csrf, "verdict": "remove"})
        assert done.status_code == 303
    found = await service.job(job.job_id)
    assert found is not None and found[2] == "closed"
    (entry,) = [
        e for e in await service.audit_entries(actor="rita", action="verdict") if e.details["job"] == job.job_id
    ]
    assert entry.details["kind"] == "labelling"
