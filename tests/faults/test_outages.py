"""A dependency that goes away for 10 s is waited out: no event lost, none turned into an error."""

import asyncio
import time

import pytest
from modstream.core.events import Outcome
from modstream.core.settings import Settings
from modstream.stack import start_service, start_stack, stop_stack

from tests.faults.conftest import publish_events
from tests.records import decision_log

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]
EVENTS = 120  # a backlog past the worker's 64 in flight when the server goes (30 decided before)
OUTAGE_SECONDS = 10  # long enough for each retry to back off to 3-6 s (0.2 s doubling, jittered)


@pytest.mark.parametrize("server", ["triton", "s3", "redis"])
async def test_outage_is_waited_out(fault_stack: Settings, server: str) -> None:
    decisions = decision_log(fault_stack)
    # Every event is the same photo: without Triton's outage in their path, the duplicate
    # cache would decide them all while it is down.
    worker_settings = fault_stack.model_copy(update={"score_cache_entries": 0}) if server == "triton" else fault_stack
    start_service(worker_settings, "worker", timeout=120)
    try:
        event_ids = await publish_events(fault_stack, EVENTS)
        await decisions.wait_for(event_ids, EVENTS // 4, timeout=300)
        stop_stack(fault_stack, only=[server])
        went_down = time.monotonic()
        decided_when_down = decisions.decided(event_ids)
        await asyncio.sleep(OUTAGE_SECONDS)
        decided_during = decisions.decided(event_ids) - decided_when_down
        start_stack(fault_stack, only=[server], timeout=240)
        back = time.monotonic() - went_down
        decided = await decisions.wait_for(event_ids, EVENTS, timeout=400)
        drained = time.monotonic() - went_down - back
        assert decided == EVENTS, f"{EVENTS - decided} of {EVENTS} events have no decision after the {server} outage"
        errors = [d for e in event_ids for d in decisions.all(e) if d.decision is Outcome.ERROR]
        assert not errors, f"{len(errors)} error decisions, e.g. {errors[0].reasons}"
        print(
            f"\n{server} down {back:.0f} s: {decided_when_down} decided before, {decided_during} during "
            f"(in flight when it went), the other {EVENTS - decided_when_down - decided_during} "
            f"{drained:.0f} s after it was back; 0 errors"
        )
    finally:
        await decisions.close()
        stop_stack(fault_stack, only=["worker"])
        start_stack(fault_stack, only=[server], timeout=240)  # whatever happened, the next test has it
