"""Gold items: marking a verdicted job, slipping it into reviewers' streams, judging the verdict
and publishing nothing. The showing's life and the draw against a real Valkey; the whole path
(API, pages, topics) on the real review service (Redis, Kafka, S3)."""

import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from modstream.core.events import ModerationDecision, ReviewVerdict
from modstream.core.gold import VERDICT, GoldAnswer, Tally
from modstream.core.review_rules import ExposureLimits, GoldRules, ReviewRules, SameForAll
from modstream.core.settings import Settings
from modstream.review.jobs import Verdict, VerdictInput
from modstream.review.service import NotGold, ReviewService, UnknownLabels

from tests.dashboard_helpers import dashboard, log_in, seed_job
from tests.records import RecordLog
from tests.review_jobs import review_job as job

pytestmark = pytest.mark.integration
ALWAYS = ReviewRules(severe=frozenset({"violence.gore"}), gold=GoldRules(rate=1.0))


@pytest.fixture
async def valkey_service(redis_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[ReviewService]:
    """No broker behind it: a verdict that tried to publish would fail."""
    made = ReviewService(redis_settings, review_rules=SameForAll(ALWAYS))
    prefix = f"gold:{request.node.name}:"
    made.queues._prefix = made.exposure._prefix = made.gold._prefix = prefix
    yield made
    await made.redis.aclose()


async def gold_item(service: ReviewService, event_id: str, label: str = "drugs", by: str = "rita") -> None:
    """``event_id`` reviewed by ``by`` (closed) and marked gold: remove, with ``label``."""
    await service.queue_job(job(event_id, label, datetime.now(UTC) - timedelta(hours=30)))
    assert await service.claim_next("q", by) is not None
    await service.queues.close(event_id, by)
    await service.mark_gold(event_id, GoldAnswer("remove", frozenset({label})), "ada")


async def test_a_showing_comes_only_while_real_jobs_wait_and_ends_with_its_lease(valkey_service: ReviewService) -> None:
    service = valkey_service
    await gold_item(service, "g1")
    assert await service.claim_next("q", "remy") is None  # nothing real waits: no gold either
    await service.queue_job(job("real"))
    shown = await service.claim_next("q", "remy")
    assert shown is not None and shown[0].job_id not in ("g1", "real") and shown[0].key == "k/g1.jpg"
    assert await service.queues.gold_of(shown[0].job_id) == "g1"
    assert await service.skip(shown[0].job_id, "remy")  # a skip ends the showing
    assert await service.job(shown[0].job_id) is None
    (stats,) = await service.queue_stats()
    assert (stats.pending, stats.in_review) == (1, 0)  # only the real job, never the showing
    again = await service.claim_next("q", "remy")  # not answered: it may come again
    assert again is not None and await service.queues.gold_of(again[0].job_id) == "g1"
    # An expired lease ends it too (the next call touching the queue finds it out of time).
    later = (datetime.now(UTC) + timedelta(seconds=service.queues.lease_seconds + 1)).timestamp()
    await service.queues.stats(now=later)
    assert await service.job(again[0].job_id) is None
    # Whoever gave the verdict it was marked from is never shown it.
    mine = await service.claim_next("q", "rita")
    assert mine is not None and mine[0].job_id == "real"


async def test_a_gold_verdict_is_judged_per_label_publishes_nothing_and_is_not_shown_again(
    valkey_service: ReviewService,
) -> None:
    service = valkey_service
    await gold_item(service, "g2", label="drugs")
    await service.queue_job(job("real"))
    shown = await service.claim_next("q", "remy")
    assert shown is not None
    with pytest.raises(UnknownLabels):  # the labels are checked as on any job
        await service.submit(shown[0].job_id, "remy", VerdictInput(verdict=Verdict.APPROVE, labels=["nope"]))
    # Approve and no label, where the answer is remove with drugs: wrong twice. No broker behind
    # this service, so a verdict that published anything would fail.
    record = await service.submit(shown[0].job_id, "remy", VerdictInput(verdict=Verdict.APPROVE, labels=[]))
    assert isinstance(record, ReviewVerdict) and record.human_decision_id is None
    assert await service.job(shown[0].job_id) is None
    assert await service.gold.tallies() == [Tally("remy", "t", VERDICT, 1, 0), Tally("remy", "t", "drugs", 1, 0)]
    nxt = await service.claim_next("q", "remy")
    assert nxt is not None and nxt[0].job_id == "real"  # answered once: never again
    audited = [e for e in await service.audit_entries(actor="remy", limit=20) if e.action == "verdict"]
    assert audited[0].details["gold"] == "g2" and audited[0].details["right"] == "False"


async def test_marking_needs_a_verdict_and_labels_the_job_asks_about(valkey_service: ReviewService) -> None:
    service = valkey_service
    await service.queue_job(job("open"))
    with pytest.raises(NotGold, match="has no verdict"):
        await service.mark_gold("open", GoldAnswer("remove", frozenset()), "ada")
    with pytest.raises(NotGold, match="has no verdict"):
        await service.mark_gold("never", GoldAnswer("remove", frozenset()), "ada")
    assert await service.claim_next("q", "rita") is not None
    await service.queues.close("open", "rita")
    with pytest.raises(NotGold, match="asks about no label nope"):
        await service.mark_gold("open", GoldAnswer("remove", frozenset({"nope"})), "ada")
    with pytest.raises(NotGold, match="approve or remove"):
        await service.mark_gold("open", GoldAnswer("delete", frozenset()), "ada")
    item = await service.mark_gold("open", GoldAnswer("approve", frozenset({"drugs"})), "ada")
    assert (item.decided_by, item.marked_by) == ("rita", "ada")
    assert await service.gold.erase(["open", "other"]) == 1 and await service.gold.items() == []


async def test_a_severe_gold_item_is_not_shown_to_a_reviewer_at_the_cap(valkey_service: ReviewService) -> None:
    service = valkey_service
    await gold_item(service, "gore", label="violence.gore")
    # A cap of 0: no severe image for anyone (remy has seen none).
    service.review_rules = SameForAll(
        ALWAYS.model_copy(update={"exposure": ExposureLimits(severe_unblurred_hours_per_day=0)})
    )
    await service.queue_job(job("real"))
    claimed = await service.claim_next("q", "remy")
    assert claimed is not None and claimed[0].job_id == "real"


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(6)}"


async def test_on_the_real_stack_a_gold_showing_looks_like_any_job_and_its_verdict_publishes_nothing(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    service.gold._prefix = service.queues._prefix
    path, tokens = users
    rita, remy, ada = ({"authorization": f"Bearer {tokens[name]}"} for name in ("rita", "remy", "ada"))
    queue = unique("gq")
    marked = await seed_job(service.settings, service, unique("marked"), queue, score=0.8)
    async with dashboard(service, path) as api:
        await api.post(f"/api/queues/{queue}/claim", headers=rita)
        body = {"verdict": "remove", "labels": ["nsfw"]}
        assert (await api.post(f"/api/jobs/{marked.job_id}/verdict", headers=rita, json=body)).status_code == 200
        gold = {"job_id": marked.job_id, "verdict": "remove", "labels": ["nsfw"]}
        assert (await api.post("/api/gold", headers=rita, json=gold)).status_code == 403
        refused = await api.post("/api/gold", headers=ada, json=gold | {"labels": ["nope"]})
        assert refused.status_code == 422 and "nope" in refused.text
        assert (await api.post("/api/gold", headers=ada, json=gold)).status_code == 201
    service.review_rules = SameForAll(ALWAYS)
    real = [await seed_job(service.settings, service, unique(f"real{i}"), queue) for i in range(2)]
    async with dashboard(service, path) as api, dashboard(service, path) as browser:
        shown = (await api.post(f"/api/queues/{queue}/claim", headers=remy)).json()
        showing = shown["job"]["job_id"]
        assert showing not in {marked.job_id, *(r.job_id for r in real)}
        assert (
            shown["job"].keys() == marked.model_dump(mode="json").keys() and shown["job"]["kind"] == "threshold_review"
        )
        took = (await api.post(f"/api/queues/{queue}/claim", headers=rita)).json()["job"]["job_id"]
        assert took == real[0].job_id  # rita decided the item: never shown it
        await log_in(browser, "remy")
        page = (await browser.get(f"/jobs/{showing}")).text
        image = await browser.get(f"/jobs/{showing}/image")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        answered = await api.post(
            f"/api/jobs/{showing}/verdict", headers=remy, json={"verdict": "remove", "labels": ["nsfw"]}
        )
        assert answered.status_code == 200 and answered.json()["human_decision_id"] is None
        ordinary = (await api.post(f"/api/queues/{queue}/claim", headers=remy)).json()["job"]["job_id"]
        assert ordinary == real[1].job_id
        real_page = (await browser.get(f"/jobs/{ordinary}")).text
    # Indistinguishable: the same fields, ids and controls as a real job's page, and no word of gold.
    shape = re.compile(r'(?:name|id)="([^"]+)"')
    assert set(shape.findall(page)) == set(shape.findall(real_page)) and "gold" not in page.lower()
    # rita's real verdict is the positive signal: once it is on both topics, nothing of remy's is.
    await service.submit(real[0].job_id, "rita", VerdictInput(verdict=Verdict.APPROVE, labels=[]))
    async with (
        RecordLog(service.settings, service.settings.topic_review_verdicts, ReviewVerdict) as verdicts,
        RecordLog(service.settings, service.settings.topic_decisions, ModerationDecision) as decisions,
    ):
        assert await decisions.wait_for([real[0].job_id]) == 1
        assert await verdicts.wait_for([real[0].job_id]) == 1
        assert verdicts.all(showing) == [] and decisions.all(showing) == []
        assert len(verdicts.all(marked.job_id)) == 1 and len(decisions.all(marked.job_id)) == 1  # rita's only
    assert [t for t in await service.gold.tallies() if t.reviewer == "remy"] == [
        Tally("remy", "t", VERDICT, 1, 1),
        Tally("remy", "t", "nsfw", 1, 1),
    ]


async def test_admins_mark_and_unmark_gold_on_their_page_and_reviewers_cannot(
    valkey_service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    service = valkey_service
    await service.queue_job(job("done"))
    assert await service.claim_next("q", "rita") is not None
    await service.queues.close("done", "rita")
    async with dashboard(service, users[0]) as rita:
        await log_in(rita, "rita")
        assert (await rita.get("/admin/gold")).status_code == 403
    async with dashboard(service, users[0]) as ada:
        csrf = await log_in(ada, "ada")
        bad = await ada.post("/admin/gold", data={"csrf": csrf, "job_id": "done", "verdict": "remove", "labels": "x.y"})
        assert bad.status_code == 422 and "asks about no label x.y" in bad.text
        marked = await ada.post(
            "/admin/gold", data={"csrf": csrf, "job_id": " done ", "verdict": "remove", "labels": "drugs, "}
        )
        assert marked.status_code == 303
        page = (await ada.get("/admin/gold")).text
        assert '<a href="/jobs/done">done</a>' in page and "remove: drugs" in page
        assert (await ada.post("/admin/gold/done/unmark", data={"csrf": csrf})).status_code == 303
        assert "No gold items yet." in (await ada.get("/admin/gold")).text
    actions = [e.action for e in await service.audit_entries(actor="ada", limit=20)]
    assert actions[:2] == ["gold_unmarked", "gold_marked"]
