"""A worker told to stop (SIGTERM): it exits quickly, and nothing is lost or repeated."""

import signal
import time
from pathlib import Path

import pytest
from modstream.core.events import ModerationDecision
from modstream.core.ports import free_port
from modstream.core.settings import Settings

from tests.faults.conftest import publish_events
from tests.offsets import records_so_far, wait_until_committed_to_end
from tests.records import decision_log
from tests.workers import spawn_worker, stop_worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]


def own_port(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_web_port": free_port()})


async def test_sigterm_exits_0_within_10_s_and_loses_and_repeats_nothing(fault_stack: Settings, tmp_path: Path) -> None:
    decisions = decision_log(fault_stack)
    settings = own_port(fault_stack)
    worker = spawn_worker(settings, tmp_path / "worker.log")
    try:
        event_ids = await publish_events(fault_stack, 1500)
        before = await decisions.wait_for(event_ids, 300, timeout=300)
        asked = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        exit_code = worker.wait(60)
        stopped_in = time.monotonic() - asked
        at_stop = decisions.decided(event_ids)
        assert exit_code == 0, f"the worker exited with {exit_code}"
        assert stopped_in <= 10, f"the worker took {stopped_in:.1f} s to stop"
        worker = spawn_worker(settings, tmp_path / "worker.log")
        decided = await decisions.wait_for(event_ids, len(event_ids), timeout=600)
        assert decided == len(event_ids), f"{len(event_ids) - decided} events without a decision"
        # Every upload handled to the end, including each one the restart read again: a second
        # decision for any of them is on the topic by now.
        await wait_until_committed_to_end(fault_stack, fault_stack.consumer_group, fault_stack.topic_uploads)
        so_far = await records_so_far(fault_stack, fault_stack.topic_decisions, ModerationDecision)
        twice = [e for e in event_ids if len(so_far[e]) > 1]
        print(
            f"\nSIGTERM after {before} decisions: exited {exit_code} in {stopped_in:.1f} s with "
            f"{at_stop} decided; after a restart all {decided}; {len(twice)} decided twice"
        )
        assert not twice, f"{len(twice)} events decided twice, e.g. {twice[0]}"
    finally:
        await decisions.close()
        stop_worker(worker)
