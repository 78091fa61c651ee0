"""The claim on an event id, on the real Redis: one holder at a time, handed over only by
the holder or by the lease running out."""

import asyncio
import uuid

import pytest
from modstream.core.dedupe import DecidedEvents
from modstream.core.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def decided(stack_settings: Settings) -> DecidedEvents:
    return DecidedEvents(stack_settings.model_copy(update={"dedupe_lease_seconds": 1.0}), prefix="dedupe-test:")


def new_event() -> str:
    return uuid.uuid4().hex


async def test_of_many_claims_at_once_exactly_one_wins(decided: DecidedEvents) -> None:
    event = new_event()
    claims = await asyncio.gather(*(decided.try_claim(event) for _ in range(50)))
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1 and winners[0].token is not None and winners[0].decided_as is None
    await decided.close()


async def test_a_decided_event_is_never_claimed_again(decided: DecidedEvents) -> None:
    event = new_event()
    claim = await decided.try_claim(event)
    assert claim is not None and claim.token is not None
    await decided.mark(event, "decision-1")
    await decided.release(event, claim.token)  # too late: the mark is not a lease any more
    again = await decided.try_claim(event)
    assert again is not None and again.token is None and again.decided_as == "decision-1"
    await decided.close()


async def test_only_the_holder_releases_or_renews(decided: DecidedEvents) -> None:
    event = new_event()
    claim = await decided.try_claim(event)
    assert claim is not None and claim.token is not None
    assert not await decided.renew(event, "lease:someone-else")
    await decided.release(event, "lease:someone-else")
    assert await decided.try_claim(event) is None  # still held, and a lease is not a decision
    assert await decided.renew(event, claim.token)
    await decided.release(event, claim.token)
    assert await decided.try_claim(event) is not None
    await decided.close()


async def test_a_lease_nobody_renews_runs_out_and_can_be_taken_over(decided: DecidedEvents) -> None:
    event = new_event()
    first = await decided.try_claim(event)
    assert first is not None and first.token is not None
    assert await decided.try_claim(event) is None
    await asyncio.sleep(1.3)  # the 1 s lease, unrenewed (its holder died)
    second = await decided.try_claim(event)
    assert second is not None and second.token is not None and second.token != first.token
    assert not await decided.renew(event, first.token)  # the dead holder cannot take it back
    await decided.close()
