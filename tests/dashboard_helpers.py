"""Shared by the dashboard tests: a real review service, seeded jobs, logged-in clients.

The clients call the app in this process (``httpx.ASGITransport``), which runs no lifespan
and so no review feeds: the feeds' tests drive the real ``modstream dashboard`` process.
"""

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from modstream.core.events import ModelRef, TextLine, TextMatch, TextReading, Trigger
from modstream.core.ports import free_port
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.review.jobs import ReviewJob
from modstream.review.service import ReviewService
from modstream.review.web.app import create_app
from modstream.review.web.users import add_user, mint_token
from PIL import Image, ImageDraw, ImageFont

from tests import images

PASSWORDS = {"rita": "rita-password", "remy": "remy-password", "ada": "ada-password"}


def make_users(path: Path) -> dict[str, str]:
    """Reviewers rita and remy, admin ada; returns an API token per user."""
    for name, password in PASSWORDS.items():
        add_user(path, name, "admin" if name == "ada" else "reviewer", password)
    return {name: mint_token(path, name) for name in PASSWORDS}


async def seed_job(
    settings: Settings,
    service: ReviewService,
    job_id: str,
    queue: str,
    score: float = 0.6,
    image: bytes | None = None,
    double_review_rate: float = 0.0,
    text: TextReading | None = None,
    text_matches: Sequence[TextMatch] = (),
) -> ReviewJob:
    """A job in ``queue`` whose stored image is ``image`` (default: a noise PNG), with the text
    read in it, if any."""
    key = f"review-test/{job_id}"
    ObjectStore(settings).put(settings.uploads_bucket, key, image or images.encode_noise_png(), "image/png")
    job = ReviewJob(
        job_id=job_id,
        queue=queue,
        decision_id=f"auto-{job_id}",
        tenant="t",
        bucket=settings.uploads_bucket,
        key=key,
        scores={"nsfl": 0.1, "nsfw": score, "sfw": 0.9 - score},
        triggered=[Trigger(label="nsfw", score=score, threshold=0.4, level="review")],
        reasons=["threshold"],
        model=ModelRef(name="image_safety", version="1"),
        policy_id="default",
        policy_version="test",
        double_review_rate=double_review_rate,
        text=text,
        text_matches=list(text_matches),
        uploaded_at=datetime.now(UTC),
        enqueued_at=datetime.now(UTC),
    )
    assert await service.queues.enqueue(job)
    return job


def text_picture(lines: Sequence[str], width: int = 640, height: int = 400) -> tuple[bytes, TextReading]:
    """A PNG with ``lines`` drawn on it, and the reading OCR would give of it: each line's box
    is where the drawing put it, so boxes shown over the picture must frame the words."""
    picture = Image.new("RGB", (width, height), (244, 238, 226))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=30)
    read = []
    for index, line in enumerate(lines):
        at = (40, 50 + index * 90)
        draw.text(at, line, fill=(25, 25, 25), font=font)
        x0, y0, x1, y1 = draw.textbbox(at, line, font=font)
        read.append(TextLine(text=line, confidence=0.96, box=(x0 / width, y0 / height, x1 / width, y1 / height)))
    return images.encode(picture, "PNG"), TextReading(regions=len(lines), lines=read)


def dashboard_app(service: ReviewService, users_file: Path, **pages: Any) -> FastAPI:
    """The dashboard (with ``pages``: ``admin_pages``, ``reader_pages``), its sessions and
    sign-in counts in the namespace of the service's queues (one per test): every client of one
    test shares them, no two tests do."""
    prefix = f"{service.queues._prefix}dashboard:"
    return create_app(service, users_file, run_feeds=False, redis_prefix=prefix, **pages)


@asynccontextmanager
async def dashboard(
    service: ReviewService,
    users_file: Path,
    *,
    address: str = "127.0.0.1",
    app: FastAPI | None = None,
    raise_app_exceptions: bool = True,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the dashboard (``app``, or a new one) calling from ``address`` (what sign-in
    throttling counts by); with ``raise_app_exceptions=False`` it gets the 500 a browser would."""
    transport = httpx.ASGITransport(
        app=app or dashboard_app(service, users_file),
        client=(address, 50000),
        raise_app_exceptions=raise_app_exceptions,
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(page: Any, base: str, name: str) -> None:
    """Sign ``name`` in on a browser page (playwright's), as a person does: the form, then home."""
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORDS[name])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")


async def try_log_in(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    """One post of the login form (with its CSRF token), whatever the answer."""
    form = await client.get("/login")
    return await client.post("/login", data={"username": name, "password": password, "csrf": csrf_of(form.text)})


async def log_in(client: httpx.AsyncClient, name: str) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    response = await try_log_in(client, name, PASSWORDS[name])
    assert response.status_code == 303, response.text
    return csrf_of((await client.get("/")).text)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free loopback port in this event loop, for a browser: its address."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
