"""Appeals on the real stack (Kafka, Redis, the dashboard process and its feeds): a restriction
appealed is queued for a person who did not take it, never for its own reviewer; an overturn
publishes a decision and lifts the restriction, and the statements service publishes the
updated statement, which the (stand-in) Transparency Database never receives; appeals outside
the rules are refused, each with its reason; the HTTP API takes them from an admin's token only."""

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from confluent_kafka import Producer
from modstream.core.events import (
    AppealLodged,
    AppealOutcome,
    Bank,
    BankAction,
    BankEntry,
    ModerationDecision,
    Record,
    StatementIssued,
    StatementLifted,
    bank_key,
    entry_key,
)
from modstream.core.kafka import kafka_consumer
from modstream.core.ports import free_port, free_ports
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.topics import ensure_topics
from modstream.review.appeals import RESTRICTION
from modstream.review.web.users import add_user, mint_token
from modstream.stack import start_service, stop_stack
from modstream.statements.build import puid_of

from tests.dsa_server import RunningDatabase, running_database
from tests.records import RecordLog, records_of
from tests.scrape import scrape, total
from tests.statement_cases import decision, submitting_section

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
TENANT = "appealing"


@dataclass(frozen=True)
class Dashboard:
    settings: Settings
    queue: str
    tokens: dict[str, str]  # user -> API token

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.settings.dashboard_port}",
            headers={"authorization": f"Bearer {self.tokens[user]}"},
            timeout=30,
        )


@pytest.fixture(scope="module")
def database() -> Iterator[RunningDatabase]:
    with running_database(token="appealing-token") as running:
        yield running


@pytest.fixture
async def dashboard(stack_settings: Settings, tmp_path: Path, database: RunningDatabase) -> AsyncIterator[Dashboard]:
    tag = uuid.uuid4().hex[:8]
    queue = f"appeals-{tag}"
    policies = shutil.copytree(PROJECT_ROOT / "config" / "policies", tmp_path / "policies")
    (tmp_path / "token").write_text(database.token + "\n")
    statements = submitting_section(policies, database.endpoint, tmp_path / "token")
    tenant = {"version": "a1", "appeals": {"queue": queue}, "statements": statements}
    (policies / "tenants" / f"{TENANT}.yaml").write_text(json.dumps(tenant))
    users = tmp_path / "users.toml"
    add_user(users, "lena", "reviewer", "lena-password")
    add_user(users, "ivan", "admin", "ivan-password")
    port, metrics_port = free_ports(2)
    settings = stack_settings.model_copy(
        update={
            "topic_decisions": f"ap-{tag}.decisions",
            "topic_review_requests": f"ap-{tag}.requests",
            "topic_review_verdicts": f"ap-{tag}.verdicts",
            "topic_appeals": f"ap-{tag}.appeals",
            "topic_appeal_outcomes": f"ap-{tag}.outcomes",
            "topic_banks": f"ap-{tag}.banks",
            "topic_statements": f"ap-{tag}.statements",
            "topic_dead_letter": f"ap-{tag}.dead-letter",
            "statements_group": f"ap-{tag}-statements",
            "statements_submit_group": f"ap-{tag}-statements-submit",
            "statements_web_port": free_port(),
            "policies_dir": policies,
            "dashboard_users_file": users,
            "dashboard_port": port,
            "dashboard_metrics_port": metrics_port,
            "trace_exporter": "none",
        }
    )
    await ensure_topics(settings)
    start_service(settings, "dashboard", timeout=90)
    try:
        yield Dashboard(settings, queue, {user: mint_token(users, user) for user in ("lena", "ivan")})
    finally:
        stop_stack(settings, only=["dashboard"])


def produce(settings: Settings, topic: str, records: list[tuple[str, Record]]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "batch.size": 1})
    for key, record in records:
        producer.produce(topic, record.to_bytes(), key=key.encode())
    assert producer.flush(30) == 0


def appeal(event_id: str, reason: str = "It is a painting in a museum.") -> AppealLodged:
    return AppealLodged(event_id=event_id, tenant=TENANT, appellant="uploader", appellant_id="user-7f3a", reason=reason)


def claim_all(reviewer: httpx.Client, queue: str) -> list[str]:
    """Every job of ``queue`` this reviewer can claim (each stays leased to them)."""
    held = []
    while (claimed := reviewer.post(f"/api/queues/{queue}/claim")).status_code == 200:
        held.append(claimed.json()["job"]["job_id"])
    assert claimed.status_code == 204, claimed.text
    return held


async def test_an_appeal_goes_to_a_person_who_did_not_decide_and_an_overturn_lifts_the_restriction(
    dashboard: Dashboard,
) -> None:
    settings, tag = dashboard.settings, uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    by_lena = decision("human", tenant=TENANT, event_id=f"{tag}-lena", occurred_at=now)
    automatic = decision("model", tenant=TENANT, event_id=f"{tag}-auto", occurred_at=now)
    old = decision("model", tenant=TENANT, event_id=f"{tag}-old", occurred_at=now - timedelta(days=200))
    allowed = decision("model", tenant=TENANT, event_id=f"{tag}-allowed", decision="allow", occurred_at=now)
    other = decision("model", tenant="someone-else", event_id=f"{tag}-other", occurred_at=now)
    forgotten = decision("model", tenant=TENANT, event_id=f"{tag}-forgotten", occurred_at=now - timedelta(days=20))
    restrictions = [by_lena, automatic, old, allowed, other, forgotten]
    produce(settings, settings.topic_decisions, [(d.event_id, d) for d in restrictions])
    # Lena's remove put the image in a bank (as a policy's bank_on_remove does).
    bank = Bank(name=f"appealed-{tag}", action=BankAction.BLOCK, changed_by="test")
    banked = BankEntry(
        bank=bank.name, entry_id=f"review-{by_lena.event_id}", sha256="ab" * 32, added_by="lena", source_event_id=tag
    )
    produce(
        settings,
        settings.topic_banks,
        [(bank_key(bank.name), bank), (entry_key(bank.name, banked.entry_id), banked)],
    )
    store = redis.Redis.from_url(settings.redis_url)
    for _ in range(120):  # positive signal: the dashboard's feed has the restrictions on record
        if all(store.exists(RESTRICTION + d.event_id) for d in (by_lena, automatic, old, other)):
            break
        await asyncio.sleep(0.5)
    assert all(store.exists(RESTRICTION + d.event_id) for d in (by_lena, automatic, old, other))

    first, again = appeal(by_lena.event_id), appeal(by_lena.event_id, "Please look again.")
    refused = {
        "already_appealed": again,
        "out_of_time": appeal(old.event_id),
        "no_restriction": appeal(allowed.event_id),
    }
    unknown, elsewhere = appeal(f"{tag}-never-uploaded"), appeal(other.event_id)
    # Lodged ten days ago (its record only arrives now): past its due date from the start.
    overdue = appeal(forgotten.event_id).model_copy(update={"occurred_at": now - timedelta(days=10)})
    lodged = [first, *refused.values(), unknown, elsewhere, overdue]
    async with RecordLog(settings, settings.topic_appeal_outcomes, AppealOutcome) as outcomes:
        produce(settings, settings.topic_appeals, [(a.event_id, a) for a in lodged])
        assert await outcomes.wait_for({a.event_id for a in lodged}, timeout=60) == 6
        for _ in range(40):
            if len(outcomes.all(by_lena.event_id)) >= 2:
                break
            await asyncio.sleep(0.25)
        by_appeal = {o.appeal_id: o for e in {a.event_id for a in lodged} for o in outcomes.all(e)}
        queued = by_appeal[first.appeal_id]
        assert queued.outcome == "queued" and queued.decision_id == by_lena.decision_id
        assert queued.due_at is not None and timedelta(days=3) <= queued.due_at - first.occurred_at <= timedelta(days=5)
        for reason, refused_appeal in refused.items():
            answer = by_appeal[refused_appeal.appeal_id]
            assert (answer.outcome, answer.refusal) == ("refused", reason), answer
        # Another tenant's event is answered as an unknown one is: nothing leaks across tenants.
        assert by_appeal[unknown.appeal_id].refusal == by_appeal[elsewhere.appeal_id].refusal == "no_restriction"
        assert by_appeal[unknown.appeal_id].detail.replace(unknown.event_id, "") == by_appeal[
            elsewhere.appeal_id
        ].detail.replace(elsewhere.event_id, "")

        metrics = f"http://127.0.0.1:{settings.dashboard_metrics_port}/metrics"
        for _ in range(40):  # refreshed every 5 s
            if total(scrape(metrics), "modstream_appeals_overdue", tenant=TENANT) == 1:
                break
            await asyncio.sleep(0.5)
        assert total(scrape(metrics), "modstream_appeals_overdue", tenant=TENANT) == 1

        # Lena took the decision: that appeal is never hers to claim; the other one is.
        with dashboard.client("lena") as lena, dashboard.client("ivan") as ivan:
            hers = claim_all(lena, dashboard.queue)
            assert hers == [f"{forgotten.event_id}:appeal"]  # the other appeal only
            for job_id in hers:
                assert lena.post(f"/api/jobs/{job_id}/skip").json() == {"released": True}
            claimed = [ivan.get(f"/api/jobs/{job_id}").json()["job"] for job_id in claim_all(ivan, dashboard.queue)]
            (job,) = [j for j in claimed if j["job_id"] == f"{by_lena.event_id}:appeal"]
            assert job["kind"] == "appeal" and job["appeal"]["reason"] == first.reason
            assert job["appeal"]["restricted_by"] == "lena" and job["decision_id"] == by_lena.decision_id
            overturned = ivan.post(f"/api/jobs/{job['job_id']}/verdict", json={"verdict": "approve", "labels": []})
            assert overturned.status_code == 200, overturned.text
            assert overturned.json()["source"] == "appeal" and overturned.json()["decision"] == "allow"

            # Through the HTTP API: an admin's token lodges, a reviewer's does not.
            by_http = appeal(automatic.event_id).model_dump(mode="json")
            assert lena.post("/api/appeals", json=by_http).status_code == 403
            taken = ivan.post("/api/appeals", json=by_http)
            assert taken.status_code == 201 and taken.json()["outcome"] == "queued", taken.text
            assert ivan.post("/api/appeals", json=appeal(allowed.event_id).model_dump(mode="json")).status_code == 422

        for _ in range(40):
            if any(o.outcome == "overturned" for o in outcomes.all(by_lena.event_id)):
                break
            await asyncio.sleep(0.25)
        (answered,) = [o for o in outcomes.all(by_lena.event_id) if o.outcome == "overturned"]
    both = await records_of(settings, settings.topic_decisions, ModerationDecision, by_lena.event_id, 2)
    (new,) = [d for d in both if d.source == "appeal"]
    assert new.decision_id == answered.new_decision_id and new.reasons == ["appeal_overturned"]
    for _ in range(40):  # the overturn reached the feed: the restriction is lifted
        if not store.exists(RESTRICTION + by_lena.event_id):
            break
        await asyncio.sleep(0.25)
    assert not store.exists(RESTRICTION + by_lena.event_id)
    # ... and the bank entry her remove made is withdrawn: a copy is not blocked again by it.
    assert await tombstone(settings, settings.topic_banks, entry_key(bank.name, banked.entry_id))


async def test_an_overturn_publishes_an_updated_statement_that_the_database_never_receives(
    dashboard: Dashboard, database: RunningDatabase
) -> None:
    settings, tag = dashboard.settings, uuid.uuid4().hex[:6]
    by_lena = decision("human", tenant=TENANT, event_id=f"{tag}-lena", occurred_at=datetime.now(UTC))
    store = redis.Redis.from_url(settings.redis_url)
    start_service(settings, "statements", timeout=60)
    try:
        async with (
            RecordLog(settings, settings.topic_statements, StatementIssued) as issued,
            RecordLog(settings, settings.topic_statements, StatementLifted) as lifted,
            RecordLog(settings, settings.topic_appeal_outcomes, AppealOutcome) as outcomes,
        ):
            produce(settings, settings.topic_decisions, [(by_lena.event_id, by_lena)])
            # Positive signals: the restriction's statement is on the topic and in the database,
            # and the dashboard has the restriction on record.
            assert await issued.wait_for([by_lena.event_id], timeout=60) == 1
            original = issued.first(by_lena.event_id)
            assert original.puid == puid_of(by_lena.event_id)
            assert await stored(database, {original.puid})
            for _ in range(120):
                if store.exists(RESTRICTION + by_lena.event_id):
                    break
                await asyncio.sleep(0.5)
            assert store.exists(RESTRICTION + by_lena.event_id)
            lodged = appeal(by_lena.event_id)
            produce(settings, settings.topic_appeals, [(lodged.event_id, lodged)])
            assert await outcomes.wait_for([lodged.event_id], timeout=60) == 1
            assert outcomes.first(lodged.event_id).outcome == "queued"
            with dashboard.client("ivan") as ivan:
                (job_id,) = claim_all(ivan, dashboard.queue)
                overturned = ivan.post(f"/api/jobs/{job_id}/verdict", json={"verdict": "approve", "labels": []})
                assert overturned.status_code == 200, overturned.text
            lifting = overturned.json()
            assert lifting["source"] == "appeal" and lifting["decision"] == "allow"

            # The updated statement: its own puid, naming the one it supersedes, and when.
            assert await lifted.wait_for([by_lena.event_id], timeout=60) == 1
            update = lifted.first(by_lena.event_id)
            assert update.supersedes == original.puid and update.puid != original.puid
            assert update.decision_id == lifting["decision_id"] and update.tenant == TENANT
            assert update.lifted_at == datetime.fromisoformat(lifting["occurred_at"])
            assert f"lifted on {update.lifted_at:%Y-%m-%d}" in update.explanation
            assert "lena" not in update.explanation and "ivan" not in update.explanation
            assert lodged.reason not in update.explanation and lodged.appellant_id not in update.explanation
            assert issued.all(by_lena.event_id) == [original]  # the overturn restricts nothing itself

            # Positive signal before the absence: a later restriction's statement reaches the
            # database, and the submitter counted the update it kept back.
            later = decision("model", tenant=TENANT, event_id=f"{tag}-later", occurred_at=datetime.now(UTC))
            produce(settings, settings.topic_decisions, [(later.event_id, later)])
            assert await stored(database, {original.puid, puid_of(later.event_id)})
            metrics = f"http://127.0.0.1:{settings.statements_web_port}/metrics"
            for _ in range(60):
                if total(scrape(metrics), "modstream_statements_not_sent_total", tenant=TENANT) == 1:
                    break
                await asyncio.sleep(0.5)
            assert total(scrape(metrics), "modstream_statements_not_sent_total", tenant=TENANT) == 1
            assert total(scrape(metrics), "modstream_statements_lifted_total", tenant=TENANT) == 1
        # The database received the restriction's statement once and the later one, nothing else
        # of this test: no update, no second statement for the image whose restriction was lifted.
        received = sorted(s["puid"] for s in database.received() if str(s.get("puid", "")).startswith(tag))
        assert received == sorted([original.puid, puid_of(later.event_id)])
        assert update.puid not in {s["puid"] for s in database.stored()}
    finally:
        stop_stack(settings, only=["statements"])


async def stored(database: RunningDatabase, puids: set[str], timeout: float = 60) -> bool:
    """Whether the database holds every one of ``puids`` within ``timeout`` seconds."""
    for _ in range(int(timeout * 2)):
        if puids <= {s["puid"] for s in database.stored()}:
            return True
        await asyncio.sleep(0.5)
    return False


async def tombstone(settings: Settings, topic: str, key: str, timeout: float = 30) -> bool:
    """Whether a null value for ``key`` is on ``topic`` (read from its start, within ``timeout``)."""
    async with kafka_consumer(settings, topic) as consumer:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                if any(r.key == key.encode() and r.value is None for r in records):
                    return True
    return False
