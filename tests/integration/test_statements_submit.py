"""Statements against a server that applies the Transparency Database's own rules (tests/dsa_server.py):
every decision path accepted, in batches of at most 100, idempotent by puid, bad ones refused
with the database's reason, outages and rate limits retried."""

from collections.abc import Iterator

import httpx
import pytest
from modstream.core.events import StatementIssued
from modstream.statements.build import statement_for
from modstream.statements.submitter import NotSent, submit

from tests.dsa_server import RunningDatabase, running_database
from tests.statement_cases import PATHS, decision, policy

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def database() -> Iterator[RunningDatabase]:
    with running_database() as running:
        yield running


def issued(path: str, event_id: str) -> StatementIssued:
    made = statement_for(decision(path, event_id=event_id), policy().statements)  # type: ignore[arg-type]
    assert made is not None
    return made


async def test_a_statement_of_each_path_is_accepted_one_at_a_time(database: RunningDatabase) -> None:
    async with httpx.AsyncClient() as client:
        for path in PATHS:
            answer = await client.post(
                f"{database.endpoint}/statement",
                json=issued(path, f"one-{path}").statement,
                headers={"authorization": f"Bearer {database.token}"},
            )
            assert answer.status_code == 201, answer.text
    stored = {s["puid"]: s for s in database.stored()}
    assert {f"one-{path}" for path in PATHS} <= set(stored)
    assert stored["one-human"]["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"


async def test_a_batch_is_taken_and_sending_it_again_finds_every_puid_held(database: RunningDatabase) -> None:
    batch = [issued(PATHS[i % 4], f"batch-{i}") for i in range(100)]
    async with httpx.AsyncClient() as client:
        first = await submit(client, database.endpoint, database.token, batch)
        again = await submit(client, database.endpoint, database.token, batch)
    assert (len(first.accepted), first.duplicates, first.refused) == (100, [], {})
    assert (again.accepted, sorted(again.duplicates), again.refused) == ([], sorted(s.puid for s in batch), {})
    with pytest.raises(ValueError, match="at most 100"):
        await submit(httpx.AsyncClient(), database.endpoint, database.token, [*batch, issued("model", "batch-100")])


async def test_a_bad_statement_is_refused_with_the_reason_and_the_rest_of_its_batch_taken(
    database: RunningDatabase,
) -> None:
    good = [issued("model", f"mixed-{i}") for i in range(3)]
    unknown_category = good[1].model_copy(
        update={"puid": "mixed-bad", "statement": good[1].statement | {"puid": "mixed-bad", "category": "PORN"}}
    )
    twice = good[2].model_copy()  # the same puid twice in one call refuses the call: the second is a duplicate
    async with httpx.AsyncClient() as client:
        sent = await submit(client, database.endpoint, database.token, [good[0], unknown_category, good[2], twice])
    assert sorted(sent.accepted) == ["mixed-0", "mixed-2"] and sent.duplicates == ["mixed-2"]
    assert sent.refused == {"mixed-bad": "category: The selected category is invalid."}
    assert "mixed-bad" not in {s["puid"] for s in database.stored()}


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_an_outage_or_a_rate_limit_is_not_sent_and_sending_again_succeeds(
    database: RunningDatabase, status: int
) -> None:
    batch = [issued("model", f"retry-{status}-{i}") for i in range(5)]
    database.fail_next(status)
    async with httpx.AsyncClient() as client:
        with pytest.raises(NotSent, match=f"answered {status}"):
            await submit(client, database.endpoint, database.token, batch)
        sent = await submit(client, database.endpoint, database.token, batch)
    assert len(sent.accepted) == 5


async def test_a_wrong_token_sends_nothing(database: RunningDatabase) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(NotSent, match="answered 401"):
            await submit(client, database.endpoint, "not-the-token", [issued("model", "wrong-token")])
    assert "wrong-token" not in {s["puid"] for s in database.stored()}


async def test_the_server_refuses_what_the_database_refuses(database: RunningDatabase) -> None:
    """The stand-in itself enforces the rules read from the database's source (it is the oracle here)."""
    body = issued("model", "oracle").statement
    cases = {
        "decision_facts": body | {"decision_facts": "x" * 5001},
        "puid": body | {"puid": "has space"},
        "incompatible_content_ground": {k: v for k, v in body.items() if k != "incompatible_content_ground"},
        "decision_visibility": {k: v for k, v in body.items() if k != "decision_visibility"},
        "content_date": body | {"content_date": "2026-12-1"},
        "automated_detection": body | {"automated_detection": True},
    }
    async with httpx.AsyncClient() as client:
        for field, wrong in cases.items():
            answer = await client.post(
                f"{database.endpoint}/statement", json=wrong, headers={"authorization": f"Bearer {database.token}"}
            )
            assert answer.status_code == 422 and field in answer.json()["errors"], (field, answer.text)
