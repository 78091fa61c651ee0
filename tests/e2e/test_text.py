"""Text in images, end to end on the real stack: Triton's ocr step reads it, the workers' text
rules and text banks judge it, the dashboard shows it to a reviewer, whose remove banks a phrase.

Two workers share the uploads (one consumer group, private topics), so "every worker" is shown
by each of them deciding uploads that carry a banked phrase.
"""

import asyncio
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from modstream.core.events import ModerationDecision, Outcome, ReviewRequest, new_id
from modstream.core.ports import free_port
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.storage import ObjectStore
from modstream.ingest.sdk import UploadClient
from modstream.review.web.users import add_user, mint_token
from modstream.stack import start_service, stop_stack
from PIL import Image, ImageDraw, ImageFont

from tests import images
from tests.commands import modstream
from tests.records import decide_upload, decision_log, records_of
from tests.scrape import scrape, total
from tests.workers import log_line, log_size, spawn_worker, stop_worker

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
TENANT = "texts"
QUEUE = "text-e2e"
BANK = "scam-phrases"
# What the README promises for banks: a change reaches every running worker within this.
PROPAGATION_LIMIT_SECONDS = 5.0
TENANT_POLICY = f"""\
version: "texts-1"
labels:
  text.scam: {{review_at: 0.5, block_at: 1.0, queue: {QUEUE}}}
  text.url: {{queue: {QUEUE}}}
  text.contact: {{queue: {QUEUE}}}
bank_on_remove:
  text.scam: {BANK}
"""


@pytest.fixture(scope="module")
def text_settings(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    run = new_id()[:8]
    names = {
        f"topic_{t}": f"text-{run}.{t}"
        for t in ("uploads", "decisions", "review_requests", "dead_letter", "review_verdicts", "shadow", "banks")
    }
    policies = tmp_path_factory.mktemp("policies")
    shutil.copytree(PROJECT_ROOT / "config" / "policies", policies, dirs_exist_ok=True)  # the shipped text rules
    (policies / "tenants" / f"{TENANT}.yaml").write_text(TENANT_POLICY)
    users = tmp_path_factory.mktemp("users") / "users.toml"
    settings = stack_settings.model_copy(
        update=names
        | {
            "topic_s3_notifications": f"text-{run}.s3",
            "consumer_group": f"text-{run}-worker",
            "policies_dir": policies,
            "dashboard_port": free_port(),
            "dashboard_users_file": users,
            "trace_exporter": "none",
        }
    )
    ObjectStore(settings).ensure_bucket(settings.uploads_bucket)
    return settings


@pytest.fixture(scope="module")
def workers(text_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """Two workers in one group; their logs (JSON lines), which say which event each decided."""
    logs = [tmp_path_factory.mktemp("workers") / f"worker-{n}.log" for n in (1, 2)]
    processes = [spawn_worker(text_settings.model_copy(update={"worker_web_port": free_port()}), log) for log in logs]
    try:
        yield logs
    finally:
        for process in processes:
            stop_worker(process)


@pytest.fixture(scope="module")
def reviewer(text_settings: Settings) -> Iterator[dict[str, str]]:
    """A real dashboard process on the private topics, and a reviewer's API header."""
    name, users = f"text-{secrets.token_hex(4)}", text_settings.dashboard_users_file
    assert users is not None
    add_user(users, name, "reviewer", "text-password")
    start_service(text_settings, "dashboard", timeout=90)
    try:
        yield {"authorization": f"Bearer {mint_token(users, name)}"}
    finally:
        stop_stack(text_settings, only=["dashboard"])


def screenshot(lines: list[str], seed: int = 0, photo: bool = True) -> bytes:
    """A scam-like screenshot: dark lines on a light banner over a photo, or on a blank page
    (fresh bytes per seed, so no score cache answers for an earlier upload)."""
    if photo:
        picture = images.photos()[seed % 8].convert("RGB").resize((640, 480))
    else:
        picture = Image.new("RGB", (640, 480), (255, 255, 255 - seed % 10))
    draw = ImageDraw.Draw(picture)
    font = _font(lines)
    draw.rectangle((20, 30, 620, 60 + 70 * len(lines)), fill=(250, 250, 245 - seed % 10))
    for index, line in enumerate(lines):
        draw.text((40, 50 + index * 70), line, fill=(15, 15, 15), font=font)
    return images.encode(picture, "PNG")


def _font(lines: list[str]) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's own font (the same everywhere), or DejaVu Sans for letters it has no glyph for
    (Cyrillic): a look-alike must be drawn as itself to test anything."""
    if all(ord(char) < 128 for line in lines for char in line):
        return ImageFont.load_default(size=34)
    try:
        return ImageFont.truetype("DejaVuSans.ttf", 34)
    except OSError:
        pytest.skip("no DejaVu Sans on this machine (fonts-dejavu-core) to draw Cyrillic letters with")


async def decide(settings: Settings, data: bytes) -> ModerationDecision:
    return await decide_upload(settings, data, TENANT)


def triton_metric(settings: Settings, name: str) -> float:
    return total(scrape(f"http://{settings.triton_metrics}/metrics"), name)


def spans(decision: ModerationDecision, label: str) -> list[str]:
    """The text each match of ``label`` covers, as read."""
    assert decision.text is not None
    return [decision.text.lines[m.line].text[m.start : m.end] for m in decision.text_matches if m.label == label]


async def test_a_scam_screenshot_goes_to_review_under_text_scam_with_the_matched_span(
    text_settings: Settings, workers: list[Path]
) -> None:
    decision = await decide(text_settings, screenshot(["FREE CRYPTO GIVEAWAY", "visit scam-coin.example"]))
    assert decision.decision is Outcome.REVIEW and decision.review_queue == QUEUE
    assert {t.label: t.level for t in decision.triggered} == {"text.scam": "review", "text.url": "review"}
    assert decision.text is not None and decision.text.regions >= 2
    assert [line.text for line in decision.text.lines] == ["FREE CRYPTO GIVEAWAY", "visit scam-coin.example"]
    assert decision.scores["text.present"] > 0.8 and decision.scores["text.scam"] > 0.9
    assert "FREE CRYPTO" in spans(decision, "text.scam") and spans(decision, "text.url") == ["scam-coin.example"]
    assert decision.model is not None and "ocr" in decision.model.components
    # The reviewer gets the reading and the spans with the job.
    (request,) = await records_of(
        text_settings, text_settings.topic_review_requests, ReviewRequest, decision.event_id, 1
    )
    assert request.text == decision.text and request.text_matches == decision.text_matches


@pytest.mark.parametrize(
    "line",
    [
        "FR33 CRYPT0 G1VEAWAY",  # leetspeak
        "FRE\u0415 \u0421RY\u0420TO GIVEAWAY",  # Cyrillic Ie, Es and Er among the Latin letters
        "F R E E  C R Y P T O",  # spaced out
    ],
)
async def test_the_same_text_evading_the_rules_still_matches(
    text_settings: Settings, workers: list[Path], line: str
) -> None:
    decision = await decide(text_settings, screenshot([line], seed=len(line) + ord(line[1])))
    assert decision.text is not None and decision.text.lines, "nothing was read"
    read = decision.text.lines[0].text
    assert decision.decision is Outcome.REVIEW and "text.scam" in [t.label for t in decision.triggered], read
    assert spans(decision, "text.scam"), read


async def test_a_photo_without_text_pays_for_detection_alone(text_settings: Settings, workers: list[Path]) -> None:
    read = "modstream_ocr_regions_read_total"
    before = triton_metric(text_settings, read)
    # The positive signal first: a picture with text is read, and the counter moves.
    texted = await decide(text_settings, screenshot(["call +1 555 0100"], seed=3))
    assert texted.text is not None and texted.text.lines
    after_text = triton_metric(text_settings, read)
    assert after_text >= before + 1
    photo = images.encode(images.photos()[5].convert("RGB").rotate(1), "JPEG", quality=91)  # fresh bytes
    plain = await decide(text_settings, photo)
    assert plain.text is not None and plain.text.regions == 0 and plain.text.lines == []
    assert plain.scores["text.present"] < 0.05 and plain.text_matches == []
    assert triton_metric(text_settings, read) == after_text  # no region, no recognition
    assert plain.decision is Outcome.ALLOW


async def test_a_pathological_regular_expression_is_refused_at_policy_load(
    text_settings: Settings, workers: list[Path]
) -> None:
    tenant_file = text_settings.policies_dir / "tenants" / f"{TENANT}.yaml"
    size = log_size(workers[0])
    tenant_file.write_text(
        TENANT_POLICY.replace('"texts-1"', '"texts-2"') + "text:\n  text.scam:\n    patterns: ['(a+)+\\1']\n"
    )
    try:
        refusal = await log_line(
            workers[0],
            lambda line: line.get("msg") == "policy change refused, keeping the previous policies",
            after=size,
            timeout=30,
        )
        assert "(a+)+" in refusal["error"] and "RE2 cannot run it" in refusal["error"], refusal["error"]
        kept = await decide(text_settings, screenshot(["FREE CRYPTO GIVEAWAY"], seed=11))
        assert kept.policy_version == "texts-1" and kept.review_queue == QUEUE
    finally:
        tenant_file.write_text(TENANT_POLICY)


async def test_a_phrase_a_reviewer_banks_blocks_the_next_upload_in_every_worker(
    text_settings: Settings, workers: list[Path], reviewer: dict[str, str]
) -> None:
    done = modstream(text_settings, "bank", "create", BANK, "--action", "block", "--by", "ops")
    assert done.returncode == 0, done.stdout + done.stderr
    # On a blank page: the remove banks the image too, and no later upload must look like it.
    first = await decide(text_settings, screenshot(["Double your bitcoin today", "DM @cryptoking"], 21, photo=False))
    assert first.decision is Outcome.REVIEW and first.review_queue == QUEUE
    url = f"http://127.0.0.1:{text_settings.dashboard_port}"
    async with httpx.AsyncClient(base_url=url, headers=reviewer, timeout=30) as http:
        job = None
        for _ in range(120):  # the dashboard's feed turns the request into a job
            claimed = await http.post(f"/api/queues/{QUEUE}/claim")
            if claimed.status_code == 200 and claimed.json()["job"]["job_id"] == first.event_id:
                job = claimed.json()["job"]
                break
            if claimed.status_code == 204:  # not fed yet (earlier tests' jobs stay claimed by the reviewer)
                await asyncio.sleep(0.5)
        assert job is not None and job["text"]["lines"][0]["text"] == "Double your bitcoin today"
        not_read = await http.post(
            f"/api/jobs/{first.event_id}/verdict",
            json={"verdict": "remove", "labels": ["text.scam"], "phrase": "send me money"},
        )
        assert not_read.status_code == 422 and "not in the text" in not_read.text
        verdict = await http.post(
            f"/api/jobs/{first.event_id}/verdict",
            json={"verdict": "remove", "labels": ["text.scam"], "phrase": "double your bitcoin"},
        )
        assert verdict.status_code == 200, verdict.text
    banked = time.monotonic()
    # The next upload carrying the phrase, in other words and letters around it, is the bank's.
    took, first_blocked = None, None
    for seed in range(30, 40):
        decision = await decide(text_settings, screenshot(["Act now:", "DOUBLE YOUR B1TCOIN"], seed=seed))
        if decision.bank_match is not None:
            took, first_blocked = time.monotonic() - banked, decision
            break
    assert took is not None and first_blocked is not None, "no upload was decided by the bank"
    print(f"\na phrase banked by a reviewer decided an upload {took:.2f} s after the verdict")
    assert took < PROPAGATION_LIMIT_SECONDS
    # Every worker has it: a dozen more uploads, spread over both workers' partitions.
    sizes = [log_size(log) for log in workers]
    async with UploadClient(text_settings) as client, decision_log(text_settings) as decisions:
        events = [
            await client.upload_image(screenshot(["DOUBLE YOUR B1TCOIN", "limited offer"], seed=seed), TENANT)
            for seed in range(40, 52)
        ]
        assert await decisions.wait_for([e.event_id for e in events], timeout=180) == len(events)
        blocked = [first_blocked, *(decisions.first(e.event_id) for e in events)]
    for decision in blocked:
        assert decision.decision is Outcome.BLOCK and decision.reasons == ["hash_match"], decision.reasons
        assert decision.bank_match is not None and (decision.bank_match.bank, decision.bank_match.signal) == (
            BANK,
            "text",
        )
        assert spans(decision, BANK) == ["DOUBLE YOUR B1TCOIN"]
    ids = {e.event_id for e in events}
    for log, size in zip(workers, sizes, strict=True):
        # Each worker decided some of them (a worker's log says which events it decided).
        await log_line(log, lambda line: line.get("msg") == "decided" and line.get("event_id") in ids, size, 30)
