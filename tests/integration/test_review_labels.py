"""Review labels a team defines (``modstream labels``, the dashboard's Labels page), on the real
Redis, Kafka and S3: offered on every job at once, carried by verdicts, refused when nobody
defined them."""

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from modstream.cli.labels import taxonomy_labels
from modstream.core.events import ModerationDecision, ReviewVerdict
from modstream.core.labels import LabelError, LabelRegistry, label_definition
from modstream.core.settings import Settings
from modstream.review.service import ReviewService

from tests.commands import modstream
from tests.dashboard_helpers import dashboard, log_in, seed_job
from tests.integration.test_dashboard import INLINE, assert_protected
from tests.records import RecordLog

pytestmark = pytest.mark.integration
# The command writes where every dashboard reads (``labels:`` in its Redis database): a
# database of its own here, so that no other test's jobs offer what this one defines.
COMMAND_DB = 5


def unique(name: str) -> str:
    """An event id of this run alone: the topics are shared by every test of the session."""
    return f"{name}-{secrets.token_hex(6)}"


def boxes(page: str) -> dict[str, str]:
    """The job page's label checkboxes: name -> ' checked' or ''."""
    return dict(re.findall(r'name="labels" value="([a-z0-9_.-]+)"( checked)?', page))


@pytest.fixture
def labelled(service: ReviewService) -> ReviewService:
    """The test's review service with a label registry of its own, checking the real taxonomy."""
    service.labels = LabelRegistry(service.redis, prefix=f"{service.queues._prefix}labels:")
    service.taxonomy_labels = lambda: taxonomy_labels(service.settings)
    return service


@pytest.fixture
async def command_service(stack_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[ReviewService]:
    """A review service on the Redis database that ``modstream labels`` (run with its settings) writes to."""
    settings = stack_settings.model_copy(
        update={"redis_url": stack_settings.redis_url.rsplit("/", 1)[0] + f"/{COMMAND_DB}"}
    )
    service = ReviewService(settings)
    service.queues._prefix = f"labels:{request.node.name}:"
    await service.redis.flushdb()
    await service.start()
    yield service
    await service.stop()


async def verdicts_and_decisions(settings: Settings, event_id: str) -> tuple[list[ReviewVerdict], int]:
    """Every verdict of the event, and how many decisions, once no more arrive."""
    async with (
        RecordLog(settings, settings.topic_review_verdicts, ReviewVerdict) as verdicts,
        RecordLog(settings, settings.topic_decisions, ModerationDecision) as decisions,
    ):
        assert await verdicts.wait_for([event_id]) == 1
        await decisions.wait_for([event_id])
        await asyncio.sleep(2)  # a record published before the one awaited would be here by now
        return verdicts.all(event_id), len(decisions.all(event_id))


async def test_the_registry_defines_lists_gets_and_removes(stack_settings: Settings) -> None:
    client = aioredis.Redis.from_url(stack_settings.redis_url)
    registry = LabelRegistry(client, prefix=f"{unique('registry')}:")
    try:
        assert await registry.all() == [] and await registry.get("emblem.red") is None
        red = label_definition("emblem.red", "a red emblem", "ada")
        scam = label_definition("scam.layout", "the layout of a known scam", "sam")
        await registry.define(scam)
        await registry.define(red)
        assert await registry.all() == [red, scam]  # by name
        assert await registry.get("emblem.red") == red
        again = label_definition("emblem.red", "another meaning", "bob")
        with pytest.raises(LabelError) as refused:
            await registry.define(again)
        assert str(refused.value) == (
            f"label 'emblem.red' is already defined (by ada at {red.defined_at:%Y-%m-%d %H:%M} UTC)"
        )
        assert await registry.get("emblem.red") == red  # the first definition stands, its time too
        assert await registry.remove("emblem.red") is True
        assert await registry.remove("emblem.red") is False
        assert await registry.get("emblem.red") is None and await registry.all() == [scam]
        await registry.define(again)  # a removed name can be defined anew, from now on
        assert await registry.get("emblem.red") == again
    finally:
        await client.aclose()


async def test_a_label_the_command_defines_is_offered_at_once_and_verdicts_carry_it(
    command_service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    service, settings = command_service, command_service.settings
    path, tokens = users
    rita = {"authorization": f"Bearer {tokens['rita']}"}
    job = await seed_job(settings, service, unique("labelled"), "q")
    async with dashboard(service, path) as api, dashboard(service, path) as browser:
        claimed = await api.post("/api/queues/q/claim", headers=rita)
        assert claimed.json()["labels_offered"] == ["nsfl", "nsfw", "sfw"]
        await log_in(browser, "rita")

        added = modstream(settings, "labels", "add", "emblem.red", "--description", "a red emblem", "--by", "ada")
        assert added.returncode == 0, added.stderr
        assert "label emblem.red defined at" in added.stdout

        # No restart: the job rita holds offers it now, on her page and in the API.
        shown = await api.get(f"/api/jobs/{job.job_id}", headers=rita)
        assert shown.status_code == 200
        assert shown.json()["labels_offered"] == ["emblem.red", "nsfl", "nsfw", "sfw"]
        assert (shown.json()["status"], shown.json()["lease"]["reviewer"]) == ("leased", "rita")
        page = (await browser.get(f"/jobs/{job.job_id}")).text
        assert boxes(page) == {"emblem.red": "", "nsfl": "", "nsfw": " checked", "sfw": ""}
        assert '<label class="check" title="a red emblem"><input type="checkbox" name="labels" value="emblem.red">' in (
            page
        )

        listed = modstream(settings, "labels", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        (defined,) = json.loads(listed.stdout)
        assert (defined["name"], defined["description"], defined["defined_by"]) == ("emblem.red", "a red emblem", "ada")
        table = modstream(settings, "labels", "list")
        assert "emblem.red" in table.stdout and "ada" in table.stdout and "a red emblem" in table.stdout

        duplicate = modstream(settings, "labels", "add", "emblem.red", "--description", "something else")
        assert duplicate.returncode == 2
        assert "refused: label 'emblem.red' is already defined (by ada at" in duplicate.stderr
        clash = modstream(settings, "labels", "add", "drugs", "--description", "drugs, again")
        assert clash.returncode == 2
        assert "refused: label 'drugs' is one of the taxonomy's labels" in clash.stderr

        body = {"verdict": "remove", "labels": ["emblem.red", "nsfw"], "note": "red emblem on a flag"}
        decided = await api.post(f"/api/jobs/{job.job_id}/verdict", headers=rita, json=body)
        assert decided.status_code == 200, decided.text
    verdicts, decisions = await verdicts_and_decisions(settings, job.job_id)
    assert [(v.labels, v.reviewer, v.verdict) for v in verdicts] == [(["emblem.red", "nsfw"], "rita", "remove")]
    assert decisions == 1


async def test_a_verdict_naming_an_undefined_or_removed_label_is_refused_and_publishes_nothing(
    command_service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    service, settings = command_service, command_service.settings
    path, tokens = users
    rita = {"authorization": f"Bearer {tokens['rita']}"}
    job = await seed_job(settings, service, unique("refused"), "q")
    assert modstream(settings, "labels", "add", "scam.layout", "--description", "a scam's layout").returncode == 0
    async with dashboard(service, path) as api, dashboard(service, path) as browser:
        claimed = await api.post("/api/queues/q/claim", headers=rita)
        assert claimed.json()["labels_offered"] == ["nsfl", "nsfw", "scam.layout", "sfw"]

        never = {"verdict": "remove", "labels": ["emblem.blue", "nsfw"]}
        refused = await api.post(f"/api/jobs/{job.job_id}/verdict", headers=rita, json=never)
        assert refused.status_code == 422
        assert refused.json()["detail"] == (
            f"job {job.job_id} asks about no label emblem.blue (its labels: nsfl, nsfw, scam.layout, sfw)"
        )

        removed = modstream(settings, "labels", "remove", "scam.layout")
        assert removed.returncode == 0 and "label scam.layout removed" in removed.stdout
        again = modstream(settings, "labels", "remove", "scam.layout")
        assert again.returncode == 2 and "refused: no label named 'scam.layout' is defined" in again.stderr
        shown = await api.get(f"/api/jobs/{job.job_id}", headers=rita)
        assert shown.json()["labels_offered"] == ["nsfl", "nsfw", "sfw"]
        csrf = await log_in(browser, "rita")
        assert boxes((await browser.get(f"/jobs/{job.job_id}")).text) == {"nsfl": "", "nsfw": " checked", "sfw": ""}
        # The form is checked the same way as the API.
        ticked = {"csrf": csrf, "verdict": "remove", "labels": ["scam.layout"]}
        form = await browser.post(f"/jobs/{job.job_id}/verdict", data=ticked)
        assert form.status_code == 422 and "asks about no label scam.layout" in form.text
        stale = {"verdict": "remove", "labels": ["scam.layout"]}
        refused = await api.post(f"/api/jobs/{job.job_id}/verdict", headers=rita, json=stale)
        assert refused.status_code == 422 and "asks about no label scam.layout" in refused.json()["detail"]

        found = await service.job(job.job_id)
        assert found is not None and found[2] == "leased"  # still rita's to decide
        decided = await api.post(f"/api/jobs/{job.job_id}/verdict", headers=rita, json={**never, "labels": ["nsfw"]})
        assert decided.status_code == 200, decided.text
    # Only the accepted verdict was published: the refused ones came before it, and left nothing.
    verdicts, decisions = await verdicts_and_decisions(settings, job.job_id)
    assert [v.labels for v in verdicts] == [["nsfw"]] and decisions == 1


async def test_admins_define_labels_on_the_labels_page(
    labelled: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    service = labelled
    job = await seed_job(service.settings, service, unique("page"), "q")
    async with dashboard(service, users[0]) as ada, dashboard(service, users[0]) as rita:
        csrf = await log_in(ada, "ada")
        empty = await ada.get("/admin/labels")
        assert empty.status_code == 200 and "No label defined yet." in empty.text
        assert '<a href="/admin/labels">Labels</a>' in empty.text
        assert_protected(empty)
        form = {"csrf": csrf, "name": "scam.layout", "description": "the layout of a known scam"}
        defined = await ada.post("/admin/labels", data=form)
        assert (defined.status_code, defined.headers["location"]) == (303, "/admin/labels?notice=defined")
        page = await ada.get(defined.headers["location"])
        assert "Label defined: every job offers it now." in page.text
        row = re.search(r"<tr><td><code>scam\.layout</code></td>(.*?)</tr>", page.text, re.S)
        assert row is not None, page.text
        assert re.fullmatch(
            r"<td>the layout of a known scam</td><td>ada</td>\s*<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>", row.group(1)
        )
        assert INLINE.search(page.text) is None
        definition = await service.labels.get("scam.layout")
        assert definition is not None and definition.defined_by == "ada"
        audited = await service.audit_entries(actor="ada", action="label_defined")
        assert [e.details["label"] for e in audited] == ["scam.layout"]

        # At once on a job a reviewer holds.
        rita_csrf = await log_in(rita, "rita")
        await rita.post("/queues/q/claim", data={"csrf": rita_csrf})
        shown = (await rita.get(f"/jobs/{job.job_id}")).text
        assert boxes(shown) == {"nsfl": "", "nsfw": " checked", "scam.layout": "", "sfw": ""}
        assert 'title="the layout of a known scam"' in shown

        # Refusals: the page again, with the reason and what was typed.
        refusals = {
            "scam.layout": "label 'scam.layout' is already defined (by ada at",
            "sexual.explicit": "label 'sexual.explicit' is one of the taxonomy's labels (the models score it)",
            "Scam Layout": "label 'Scam Layout': the name must be a dotted lowercase name like emblem.red",
        }
        for name, reason in refusals.items():
            answer = await ada.post("/admin/labels", data={**form, "name": name, "description": "typed"})
            assert answer.status_code == 422, name
            assert reason in answer.text.replace("&#39;", "'"), (name, answer.text)
            assert f'name="name" value="{name}"' in answer.text and 'value="typed"' in answer.text
        blank = await ada.post("/admin/labels", data={**form, "name": "emblem.red", "description": "  "})
        assert blank.status_code == 422
        assert "label 'emblem.red': description: String should have at least 1 character" in blank.text.replace(
            "&#39;", "'"
        )
        service.taxonomy_labels = lambda: taxonomy_labels(
            service.settings.model_copy(update={"model_repository": Path("/nonexistent")})
        )
        unreadable = await ada.post("/admin/labels", data={**form, "name": "emblem.red"})
        assert unreadable.status_code == 422
        assert "the name cannot be checked against the taxonomy" in unreadable.text
        assert (
            await ada.post("/admin/labels", data={**form, "csrf": "wrong", "name": "emblem.green"})
        ).status_code == 403

        # Reviewers neither see nor use the page.
        assert (await rita.get("/admin/labels")).status_code == 403
        posted = await rita.post("/admin/labels", data={**form, "csrf": rita_csrf, "name": "emblem.rita"})
        assert posted.status_code == 403
        assert '<a href="/admin/labels">' not in (await rita.get("/")).text
    assert [d.name for d in await service.labels.all()] == ["scam.layout"]
