"""``modstream statements`` as a process on the real broker: decisions of every path in (from
confluent-kafka, a client that is not ours), statements out on their topic and in the stand-in
Transparency Database; a statement our own check refuses is dead-lettered and never sent; an
outage of the database is waited out; a replay sends nothing twice."""

import asyncio
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from modstream.core.events import DeadLetter, DeadLetterReason, ModerationDecision, StatementIssued
from modstream.core.kafka import connection_options
from modstream.core.ports import free_port
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.topics import ensure_topics
from modstream.stack import start_service, stop_stack

from tests.dsa_server import RunningDatabase, running_database
from tests.records import RecordLog
from tests.statement_cases import PATHS, decision, submitting_section

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
TENANT, QUIET = "acct", "quiet"  # quiet: a policy with no statements section


@pytest.fixture(scope="module")
def database() -> Iterator[RunningDatabase]:
    with running_database(token="acct-token") as running:
        yield running


async def private(settings: Settings, tmp: Path, database: RunningDatabase) -> Settings:
    tag = uuid.uuid4().hex[:10]
    policies = shutil.copytree(PROJECT_ROOT / "config" / "policies", tmp / "policies")
    (tmp / "token").write_text(database.token + "\n")
    section = submitting_section(policies, database.endpoint, tmp / "token")
    (policies / "tenants" / f"{TENANT}.yaml").write_text(json.dumps({"version": "acct-1", "statements": section}))
    settings = settings.model_copy(
        update={
            "topic_decisions": f"st-{tag}.decisions",
            "topic_statements": f"st-{tag}.statements",
            "topic_dead_letter": f"st-{tag}.dead-letter",
            "statements_group": f"st-{tag}",
            "statements_submit_group": f"st-{tag}-submit",
            "statements_web_port": free_port(),
            "policies_dir": policies,
        }
    )
    await ensure_topics(settings)
    return settings


def produce(settings: Settings, decisions: list[ModerationDecision]) -> None:
    options = connection_options(settings)
    producer = Producer({"bootstrap.servers": options["bootstrap_servers"], "batch.size": 1})
    for made in decisions:
        producer.produce(settings.topic_decisions, made.to_bytes(), key=made.event_id.encode())
    assert producer.flush(30) == 0


async def test_restrictions_become_statements_sent_once_and_a_leaky_one_is_dead_lettered(
    stack_settings: Settings, tmp_path: Path, database: RunningDatabase
) -> None:
    settings = await private(stack_settings, tmp_path, database)
    tag = uuid.uuid4().hex[:6]
    restricted = [decision(path, tenant=TENANT, event_id=f"{tag}-{path}") for path in PATHS]
    allowed = decision("model", tenant=TENANT, event_id=f"{tag}-allowed", decision="allow")
    quiet = decision("model", tenant=QUIET, event_id=f"{tag}-quiet")
    match = restricted[1].bank_match
    assert match is not None
    leaky = decision(
        "bank_match",
        tenant=TENANT,
        event_id=f"{tag}-leaky",
        bank_match=match.model_copy(update={"entry_id": "sent-by-jane.doe@example.org"}),
    )
    database.fail_next(503, times=2)  # the database is down for the first two calls
    produce(settings, [*restricted, allowed, quiet, leaky])
    start_service(settings, "statements", timeout=60)
    try:
        async with (
            RecordLog(settings, settings.topic_statements, StatementIssued) as statements,
            RecordLog(settings, settings.topic_dead_letter, DeadLetter) as dead,
        ):
            ids = [d.event_id for d in restricted]
            assert await statements.wait_for(ids, timeout=60) == 4
            assert await dead.wait_for([leaky.event_id], timeout=60) == 1
            letter = dead.first(leaky.event_id)
            assert letter.reason is DeadLetterReason.STATEMENT_REFUSED and "an e-mail address" in letter.detail
            assert {statements.first(e).path for e in ids} == set(PATHS)
            # Positive signal first: the four reached the database (after its outage); then
            # nothing else did: no allow, no tenant without a section, not the leaky one.
            for _ in range(120):
                stored = {s["puid"]: s for s in database.stored()}
                if set(ids) <= set(stored):
                    break
                await asyncio.sleep(0.5)
            assert set(ids) <= set(stored)
            assert not {allowed.event_id, quiet.event_id, leaky.event_id} & set(stored)
            assert stored[f"{tag}-human"]["automated_detection"] == "No"
            assert statements.decided([allowed.event_id, quiet.event_id, leaky.event_id]) == 0

        # A replay (the writer's group read from the start again) publishes the same puids;
        # the database holds them, and nothing is stored twice.
        stop_stack(settings, only=["statements"])
        replay = settings.model_copy(update={"statements_group": settings.statements_group + "-again"})
        start_service(replay, "statements", timeout=60)
        async with RecordLog(settings, settings.topic_statements, StatementIssued) as statements:
            assert await statements.wait_for(ids, timeout=60) == 4
            for _ in range(60):
                if all(len(statements.all(e)) == 2 for e in ids):
                    break
                await asyncio.sleep(0.5)
            assert all(len(statements.all(e)) == 2 for e in ids)
        assert sorted(s["puid"] for s in database.stored() if s["puid"].startswith(tag)) == sorted(ids)
    finally:
        stop_stack(settings, only=["statements"])
