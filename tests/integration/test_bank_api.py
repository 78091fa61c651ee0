"""Hash banks over HTTP, on HMA 2.0's routes, in the dashboard served with its lifespan (so the
bank room starts and follows the banks topic as in `modstream dashboard`), against the real
Kafka, Redis, S3 and Triton; `modstream bank import/export` as a user runs them; and text
banks: a phrase a reviewer's remove banks, one an operator adds, and erasure taking them back.

The banks topic is private to this module, so no other test's worker ever sees these banks.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from fastapi import FastAPI
from modstream.bank import ops, topic
from modstream.bank.http import BankApi
from modstream.bank.topic import read_banks
from modstream.core.events import PdqHash, TextLine, TextReading, new_id
from modstream.core.media import exact_hashes
from modstream.core.settings import Settings
from modstream.review.service import ReviewService
from modstream.review.web.app import create_app
from PIL import Image

from tests import images
from tests.commands import modstream
from tests.dashboard_helpers import dashboard, log_in, make_users, seed_job

pytestmark = pytest.mark.integration
BLOCKED = "api-known-bad"
ALLOWED = "api-known-good"
# PdqSignal.get_examples() in python-threatexchange: a hash no photo here has.
PARTNER_PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


class Served(NamedTuple):
    client: httpx.AsyncClient
    app: FastAPI
    service: ReviewService
    api: BankApi
    users: Path
    tokens: dict[str, str]
    settings: Settings


def cli(settings: Settings, *args: str, ok: bool = True) -> tuple[int, str]:
    done = modstream(settings, "bank", *args)
    if ok:
        assert done.returncode == 0, f"modstream bank {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def bank_settings(stack_settings: Settings) -> Settings:
    # Topics of this run's own: the stack may outlive a session, and what an earlier run
    # banked must not be found here.
    names = ("banks", "decisions", "review_requests", "review_verdicts")
    run = new_id()[:8]
    return stack_settings.model_copy(update={f"topic_{name}": f"bank-api-{run}.{name}" for name in names})


@pytest.fixture(scope="module")
async def served(bank_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    # Made before the dashboard starts: it loads them from the topic, as after a restart.
    cli(bank_settings, "create", BLOCKED, "--action", "block", "--by", "test")
    cli(bank_settings, "create", ALLOWED, "--action", "allow", "--by", "test")
    users = tmp_path_factory.mktemp("bank-api") / "users.toml"
    tokens = make_users(users)
    api = BankApi(bank_settings)
    service = ReviewService(bank_settings, bank_names=api.names, bank_value=api.value)
    service.queues._prefix = "bank-api:"
    app = create_app(service, users, run_feeds=False, redis_prefix="bank-api:dashboard:", extensions=[api])
    async with app.router.lifespan_context(app), dashboard(service, users, app=app) as client:
        yield Served(client, app, service, api, users, tokens, bank_settings)


def bearer(served: Served, name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {served.tokens[name]}"}


def jpeg(image: Image.Image, scale: float = 1.0) -> bytes:
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return images.encode(image, "JPEG", quality=90)


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


async def test_every_route_answers_401_without_a_bearer_token(served: Served) -> None:
    client = served.client
    for method, path in (
        ("GET", "/c/banks"),
        ("GET", f"/c/bank/{BLOCKED}"),
        ("POST", "/h/hash"),
        ("GET", f"/m/lookup?signal_type=pdq&signal={PARTNER_PDQ}"),
        ("POST", "/m/lookup"),
        ("GET", f"/m/raw_lookup?signal_type=pdq&signal={PARTNER_PDQ}"),
        ("POST", f"/c/bank/{BLOCKED}/content"),
        ("POST", f"/c/bank/{BLOCKED}/signal"),
        ("GET", f"/c/bank/{BLOCKED}/content/x"),
        ("DELETE", f"/c/bank/{BLOCKED}/content/x"),
    ):
        assert (await client.request(method, path)).status_code == 401, path
        forged = await client.request(method, path, headers={"authorization": "Bearer ada.forged"})
        assert forged.status_code == 401, path


async def test_banks_are_listed_as_hma_lists_them(served: Served) -> None:
    listed = await served.client.get("/c/banks", headers=bearer(served, "rita"))
    assert listed.status_code == 200
    by_name = {bank["name"]: bank for bank in listed.json()}
    assert set(by_name) == {ALLOWED, BLOCKED}
    assert by_name[BLOCKED]["matching_enabled_ratio"] == 1.0 and by_name[BLOCKED]["action"] == "block"
    one = await served.client.get(f"/c/bank/{ALLOWED}", headers=bearer(served, "rita"))
    assert one.status_code == 200 and one.json()["action"] == "allow"
    assert (await served.client.get("/c/bank/no-such-bank", headers=bearer(served, "rita"))).status_code == 404


async def test_an_admin_adds_an_image_anyone_looks_it_up_by_hash_and_by_a_resized_copy_then_it_is_removed(
    served: Served,
) -> None:
    client, ada, rita = served.client, bearer(served, "ada"), bearer(served, "rita")
    photo = images.photos()[0]
    original, resized = jpeg(photo), jpeg(photo, scale=0.5)
    upload = {"photo": ("photo.jpg", original, "image/jpeg")}
    about = {"note": "known bad", "metadata": json.dumps({"content_id": "upload-42"})}

    refused = await client.post(f"/c/bank/{BLOCKED}/content", files=upload, data=about, headers=rita)
    assert refused.status_code == 403  # reviewers hash and look up; only admins change banks
    added = await client.post(f"/c/bank/{BLOCKED}/content", files=upload, data=about, headers=ada)
    assert added.status_code == 200, added.text
    content_id, signals = added.json()["id"], added.json()["signals"]
    assert set(signals) == {"pdq", "md5", "sha256"} and signals["md5"] == exact_hashes(original).md5

    # The hashing route gives the same hash (the pipeline's preprocess in Triton both times).
    hashed = await client.post("/h/hash", files={"photo": ("photo.jpg", original, "image/jpeg")}, headers=rita)
    assert hashed.status_code == 200 and hashed.json() == signals
    assert 50 <= int(hashed.headers["x-pdq-quality"]) <= 100

    found = await client.get("/m/lookup", params={"signal_type": "pdq", "signal": signals["pdq"]}, headers=rita)
    assert found.status_code == 200
    assert found.json() == {
        BLOCKED: [{"bank_content_id": content_id, "distance": "0", "signal_type": "pdq", "action": "block"}]
    }
    copy = (await client.post("/h/hash", files={"photo": ("small.jpg", resized, "image/jpeg")}, headers=rita)).json()
    apart = distance(copy["pdq"], signals["pdq"])
    assert 0 < apart <= 31, apart
    by_copy = await client.get("/m/lookup", params={"signal_type": "pdq", "signal": copy["pdq"]}, headers=rita)
    (match,) = by_copy.json()[BLOCKED]
    assert (match["bank_content_id"], match["distance"]) == (content_id, str(apart))
    uploaded = await client.post("/m/lookup", files={"photo": ("small.jpg", resized, "image/jpeg")}, headers=rita)
    assert uploaded.status_code == 200
    assert uploaded.json()["pdq"][BLOCKED][0]["bank_content_id"] == content_id
    assert uploaded.json()["md5"] == {} and uploaded.json()["sha256"] == {}  # other bytes
    raw = await client.get(
        "/m/raw_lookup",
        params={"signal_type": "md5", "signal": signals["md5"], "include_distance": "true"},
        headers=rita,
    )
    assert raw.json() == {"matches": [{"bank_content_id": content_id, "distance": "0"}]}

    shown = await client.get(f"/c/bank/{BLOCKED}/content/{content_id}?include_signals=true", headers=rita)
    assert shown.status_code == 200
    content = shown.json()
    assert (content["id"], content["signals"], content["note"]) == (content_id, signals, "known bad")
    assert content["bank"] == {"name": BLOCKED, "matching_enabled_ratio": 1.0}
    assert content["metadata"]["content_id"] == "upload-42" and content["metadata"]["json"]["added_by"] == "ada"
    listed = (await client.get("/c/banks", headers=rita)).json()
    assert {b["name"]: b["entries"] for b in listed}[BLOCKED] == 1
    on_topic = await read_banks(served.settings)  # it went through the topic, as every worker sees it
    assert on_topic.entries[(BLOCKED, content_id)].added_by == "ada"

    assert (await client.delete(f"/c/bank/{BLOCKED}/content/{content_id}", headers=rita)).status_code == 403
    removed = await client.delete(f"/c/bank/{BLOCKED}/content/{content_id}", headers=ada)
    assert removed.status_code == 200 and removed.json() == {"deleted": 1}
    again = await client.delete(f"/c/bank/{BLOCKED}/content/{content_id}", headers=ada)
    assert again.json() == {"deleted": 0}  # as HMA answers for content that is not there
    gone = await client.get("/m/lookup", params={"signal_type": "pdq", "signal": signals["pdq"]}, headers=rita)
    assert gone.json() == {}
    assert (await client.get(f"/c/bank/{BLOCKED}/content/{content_id}", headers=rita)).status_code == 404
    assert (BLOCKED, content_id) not in (await read_banks(served.settings)).entries


async def test_an_admin_adds_a_hash_as_hma_takes_it_and_a_lookup_lists_the_deciding_bank_first(served: Served) -> None:
    client, ada, rita = served.client, bearer(served, "ada"), bearer(served, "rita")
    assert (await client.post(f"/c/bank/{BLOCKED}/signal", json={"pdq": PARTNER_PDQ}, headers=rita)).status_code == 403
    allowed = await client.post(f"/c/bank/{ALLOWED}/signal", json={"pdq": PARTNER_PDQ}, headers=ada)
    blocked = await client.post(f"/c/bank/{BLOCKED}/signal", json={"pdq": PARTNER_PDQ, "note": "partner"}, headers=ada)
    assert allowed.status_code == blocked.status_code == 200, blocked.text
    assert blocked.json()["signals"] == {"pdq": PARTNER_PDQ}
    found = await client.get("/m/lookup", params={"signal_type": "pdq", "signal": PARTNER_PDQ}, headers=rita)
    # Every match, as HMA lists them; the one that decides (the strictest action) first.
    assert list(found.json()) == [BLOCKED, ALLOWED]
    assert found.json()[BLOCKED][0]["bank_content_id"] == blocked.json()["id"]
    assert found.json()[ALLOWED][0]["bank_content_id"] == allowed.json()["id"]
    raw = await client.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": PARTNER_PDQ}, headers=rita)
    assert raw.json() == {"matches": [blocked.json()["id"], allowed.json()["id"]]}
    for bank, added in ((BLOCKED, blocked), (ALLOWED, allowed)):
        gone = await client.delete(f"/c/bank/{bank}/content/{added.json()['id']}", headers=ada)
        assert gone.json() == {"deleted": 1}


async def test_bad_hashes_and_uploads_that_are_not_images_are_refused_with_422(served: Served) -> None:
    client, ada, rita = served.client, bearer(served, "ada"), bearer(served, "rita")
    for params in (
        {"signal_type": "pdq", "signal": "facefacefaceface"},
        {"signal_type": "pdq", "signal": PARTNER_PDQ[:-1] + "g"},
        {"signal_type": "video_md5", "signal": "d41d8cd98f00b204e9800998ecf8427e"},
        {"signal_type": "pdq"},
    ):
        refused = await client.get("/m/lookup", params=params, headers=rita)
        assert refused.status_code == 422, params
        assert (await client.get("/m/raw_lookup", params=params, headers=rita)).status_code == 422
    assert (
        "is not a pdq hash (64 hex digits)"
        in (await client.get("/m/lookup", params={"signal_type": "pdq", "signal": "xyz"}, headers=rita)).json()[
            "detail"
        ]
    )
    for body in ({"pdq": "xyz"}, {"url_md5": "d41d8cd98f00b204e9800998ecf8427e"}, {"note": "no hash"}, ["pdq"]):
        assert (await client.post(f"/c/bank/{BLOCKED}/signal", json=body, headers=ada)).status_code == 422, body
    for name, data in (("broken.jpg", images.corrupt_jpeg()), ("notes.jpg", images.text_named_jpg())):
        for path in ("/h/hash", "/m/lookup", f"/c/bank/{BLOCKED}/content"):
            refused = await client.post(path, files={"photo": (name, data, "image/jpeg")}, headers=ada)
            assert refused.status_code == 422, (path, name, refused.text)
            assert "not an image modstream can hash" in refused.json()["detail"]
    assert (await client.post("/h/hash", headers=rita)).status_code == 422  # no file at all
    missing = await client.post("/c/bank/no-such-bank/signal", json={"pdq": PARTNER_PDQ}, headers=ada)
    assert missing.status_code == 404
    assert (await read_banks(served.settings)).entries_of(BLOCKED) == []  # nothing was added


async def test_the_review_page_offers_the_banks_and_a_remove_adds_the_image_to_one(served: Served) -> None:
    settings, service = served.settings, served.service
    picture = jpeg(images.photos()[1])
    pdq = (
        await served.client.post(
            "/h/hash", files={"photo": ("p.jpg", picture, "image/jpeg")}, headers=bearer(served, "rita")
        )
    ).json()["pdq"]
    # seed_job's job has no hashes (no bank to offer); the same image's job with them does.
    plain = await seed_job(settings, service, "bank-api-plain", "bank-api-plain", image=picture)
    hashes = exact_hashes(picture).model_copy(update={"pdq": PdqHash(hex=pdq, quality=90)})
    banked = plain.model_copy(update={"job_id": "bank-api-hashed", "queue": "bank-api-q", "hashes": hashes})
    assert await service.queues.enqueue(banked)
    async with dashboard(service, served.users, app=served.app) as browser:
        csrf = await log_in(browser, "rita")
        claimed = await browser.post("/queues/bank-api-q/claim", data={"csrf": csrf})
        job_id = claimed.headers["location"].rsplit("/", 1)[1]
        assert job_id == banked.job_id
        page = await browser.get(f"/jobs/{job_id}")
        assert f'<option value="{ALLOWED}">' in page.text and f'<option value="{BLOCKED}">' in page.text
        done = await browser.post(
            f"/jobs/{job_id}/verdict",
            data={"csrf": csrf, "verdict": "remove", "labels": ["nsfw"], "add_to_bank": BLOCKED},
        )
        assert done.status_code == 303, done.text
    # The reviewer's remove reached the banks topic, and this dashboard's view of it.
    for _ in range(250):
        if (BLOCKED, f"review-{banked.job_id}") in served.api.banks.entries:
            break
        await asyncio.sleep(0.02)
    found = await served.client.get(
        "/m/lookup", params={"signal_type": "sha256", "signal": hashes.sha256}, headers=bearer(served, "rita")
    )
    assert found.json()[BLOCKED][0]["bank_content_id"] == f"review-{banked.job_id}"
    removed = await served.client.delete(
        f"/c/bank/{BLOCKED}/content/review-{banked.job_id}", headers=bearer(served, "ada")
    )
    assert removed.json() == {"deleted": 1}


async def test_cli_import_checks_the_whole_file_first_and_export_gives_it_back(served: Served, tmp_path: Path) -> None:
    settings = served.settings
    second = "f8f8f0cee0f4a84f06370a2a038f63f0b36e26d596621e1d33e6b39c4e9c9b22"
    bad = tmp_path / "bad.txt"
    bad.write_text(f"pdq {PARTNER_PDQ}\npdq {second}\nurl https://example.com/\n")
    code, said = cli(settings, "import", ALLOWED, str(bad), "--format", "te", ok=False)
    said = " ".join(said.split())  # the console wraps long messages at its width
    assert code == 2 and "line 3: unknown signal type 'url'" in said and "nothing was imported" in said
    empty = tmp_path / "empty.json"
    empty.write_text("")
    code, said = cli(settings, "import", ALLOWED, str(empty), "--format", "hma", ok=False)
    assert code == 2 and "line 1: the file is empty" in said
    assert (await read_banks(settings)).entries_of(ALLOWED) == []  # nothing published

    good = tmp_path / "hashes.txt"
    good.write_text(f"# from pdq-photo-hasher\n{PARTNER_PDQ},100,a.jpg\n{second},87,b.jpg\n")
    _, said = cli(settings, "import", ALLOWED, str(good), "--by", "importer", "--note", "partner list")
    assert "2 entries read" in said and "imported into" in said
    exported = tmp_path / "out.json"
    cli(settings, "export", ALLOWED, "--format", "hma", "-o", str(exported))
    contents = json.loads(exported.read_text())
    assert sorted(c["signals"]["pdq"] for c in contents) == sorted([PARTNER_PDQ, second])
    assert {c["note"] for c in contents} == {"a.jpg", "b.jpg"}  # the file's own notes win
    assert {c["metadata"]["json"]["added_by"] for c in contents} == {"importer"}
    te = modstream(settings, "bank", "export", ALLOWED, "--format", "te").stdout
    assert sorted(te.splitlines()) == sorted([f"pdq {PARTNER_PDQ}", f"pdq {second}"])

    # Importing the export again rewrites the same entries (their ids are in the file).
    cli(settings, "import", ALLOWED, str(exported), "--format", "hma")
    again = (await read_banks(settings)).entries_of(ALLOWED)
    assert sorted(e.entry_id for e in again) == sorted(c["id"] for c in contents)
    listed = modstream(settings, "bank", "export", ALLOWED).stdout.split()
    assert sorted(listed) == sorted([PARTNER_PDQ, second])
    for entry in again:
        await served.client.delete(f"/c/bank/{ALLOWED}/content/{entry.entry_id}", headers=bearer(served, "ada"))


def read_text(*lines: str) -> TextReading:
    return TextReading(
        regions=len(lines),
        lines=[
            TextLine(text=line, confidence=0.96, box=(0.1, 0.1 * n, 0.9, 0.1 * n + 0.08))
            for n, line in enumerate(lines)
        ],
    )


async def seen(served: Served, key: tuple[str, str], present: bool = True) -> bool:
    """Whether the dashboard's own view of the banks comes to hold (or to lack) ``key``."""
    for _ in range(250):
        if (key in served.api.banks.entries) == present:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_remove_banks_a_phrase_of_the_text_read_and_refuses_one_it_cannot_bank(served: Served) -> None:
    settings, service = served.settings, served.service
    picture = jpeg(images.photos()[2])
    plain = await seed_job(settings, service, "bank-api-text-plain", "bank-api-text-plain", image=picture)
    job = plain.model_copy(
        update={
            "job_id": "bank-api-text",
            "queue": "bank-api-text-q",
            "hashes": exact_hashes(picture),
            "text": read_text("FREE CRYPTO GIVEAWAY", "visit scam-coin.example"),
            "bank_on_remove": {"nsfw": BLOCKED},
        }
    )
    assert await service.queues.enqueue(job)
    async with dashboard(service, served.users, app=served.app) as browser:
        csrf = await log_in(browser, "rita")
        claimed = await browser.post("/queues/bank-api-text-q/claim", data={"csrf": csrf})
        assert claimed.headers["location"] == f"/jobs/{job.job_id}"
        page = await browser.get(f"/jobs/{job.job_id}")
        assert 'name="phrase"' in page.text and f"nsfw → {BLOCKED}" in page.text
        verdict = {"csrf": csrf, "verdict": "remove", "labels": ["nsfw"]}
        for phrase, labels, said in (
            ("free bitcoin", ["nsfw"], "it is not in the text read in it"),
            ("ok", ["nsfw"], "too short to bank"),
            ("free crypto", [], "the phrase has no bank to go to"),
        ):
            refused = await browser.post(
                f"/jobs/{job.job_id}/verdict", data=verdict | {"phrase": phrase, "labels": labels}
            )
            assert refused.status_code == 422 and said in refused.json()["detail"], refused.text
        # Refused before anything was published: the job is still Rita's, nothing was banked.
        held = await service.queues.job(job.job_id)
        assert held is not None and held[1] is not None and held[1].reviewer == "rita"
        assert (await read_banks(settings)).entries_of(BLOCKED) == []
        done = await browser.post(f"/jobs/{job.job_id}/verdict", data=verdict | {"phrase": " Free CRYPT0 "})
        assert done.status_code == 303, done.text

    image_key, phrase_key = (BLOCKED, f"review-{job.job_id}"), (BLOCKED, f"review-{job.job_id}.text")
    assert await seen(served, phrase_key) and await seen(served, image_key)
    # On the banks topic, as every worker reads it.
    banks = await read_banks(settings)
    entry = banks.entries[phrase_key]
    assert (entry.signals, entry.added_by, entry.source_event_id) == ({"text": "Free CRYPT0"}, "rita", job.job_id)
    assert entry.sha256 is None and banks.entries[image_key].sha256 == exact_hashes(picture).sha256
    found = banks.match_text(read_text("nothing here", "Get your fr33 crypto now!"), "t")
    assert found.decides is not None and (found.decides.bank.name, found.decides.entry_id) == phrase_key
    (span,) = found.spans
    assert (span.line, span.start, span.end, span.rule) == (1, 9, 20, f"bank:{BLOCKED}")
    looked_up = await served.client.get(
        "/m/lookup", params={"signal_type": "text", "signal": "FREE CRYPTO!!"}, headers=bearer(served, "rita")
    )
    assert looked_up.json()[BLOCKED][0]["bank_content_id"] == phrase_key[1]

    # Erasing the upload takes back everything banked from it, the phrase too.
    erased = ops.erase_taken_from(banks, [job.job_id])
    assert sorted(key for key, _ in erased) == sorted(f"entry/{b}/{e}" for b, e in (image_key, phrase_key))
    await topic.publish(settings, erased)
    assert await seen(served, phrase_key, present=False) and await seen(served, image_key, present=False)
    assert (await read_banks(settings)).match_text(read_text("FREE CRYPTO"), "t").decides is None


async def test_an_operator_seeds_a_text_bank_from_the_cli_and_the_api(served: Served) -> None:
    settings, ada = served.settings, bearer(served, "ada")
    code, said = cli(settings, "add", ALLOWED, "--text", "ok", ok=False)
    assert code == 2 and "too short to bank" in said
    cli(settings, "add", ALLOWED, "--text", "visit scam-coin.example", "--by", "ops", "--retro-days", "0")
    added = await served.client.post(f"/c/bank/{BLOCKED}/signal", json={"text": "wire the money"}, headers=ada)
    assert added.status_code == 200 and added.json()["signals"] == {"text": "wire the money"}
    refused = await served.client.post(f"/c/bank/{BLOCKED}/signal", json={"text": "ok"}, headers=ada)
    assert refused.status_code == 422 and "too short to bank" in refused.json()["detail"]
    matched = modstream(settings, "bank", "match", "--text", "Visit SCAM-C0IN.example!", "--text", "hi there", "--json")
    first, second = json.loads(matched.stdout)
    assert first["match"]["bank"] == ALLOWED and first["match"]["signal"] == "text" and second["match"] is None
    banks = await read_banks(settings)
    for bank in (ALLOWED, BLOCKED):
        (entry,) = banks.entries_of(bank)
        await served.client.delete(f"/c/bank/{bank}/content/{entry.entry_id}", headers=ada)
