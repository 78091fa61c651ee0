"""Statements of reasons per second: built and checked from restrictions, then sent through the
submitter in calls of 100 to a local stand-in that takes every call (so the submitter, not a
remote database, is what is measured). The baseline in the same run: the same bodies posted
by a bare HTTP client, with nothing built or checked."""

import asyncio
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from modstream.core.dsa import BATCH_LIMIT
from modstream.core.events import THRESHOLD, ModelRef, ModerationDecision, Outcome, Trigger
from modstream.core.ports import free_port
from modstream.policy.statements import Reporting, StatementRules
from modstream.statements.build import statement_for
from modstream.statements.submitter import submit

REPORTING = Reporting(
    category="STATEMENT_CATEGORY_OTHER_VIOLATION_TC", terms="Terms of Service, section 4", explanation="Not allowed."
)
RULES = StatementRules(other=REPORTING)
MODEL = ModelRef(name="moderation", version="image_safety:1", components={"image_safety": "1"})


def restrictions(count: int) -> Iterator[ModerationDecision]:
    """Blocks taken by the model, and by a person after the model flagged them or on an audit sample."""
    at = datetime.now(UTC) - timedelta(hours=1)
    for i in range(count):
        human = i % 4 >= 2
        yield ModerationDecision(
            event_id=f"bench-{i}",
            tenant="bench",
            bucket="uploads",
            key=f"bench/{i}.jpg",
            decision=Outcome.BLOCK,
            scores={"sexual.explicit": 0.97},
            triggered=[Trigger(label="sexual.explicit", score=0.97, threshold=0.85, level="block")],
            reasons=(["human_review"] if human else []) + ([THRESHOLD] if i % 4 != 3 else ["audit_sample"]),
            source="human" if human else "automatic",
            reviewer="r" if human else None,
            labels=["sexual.explicit"] if human else [],
            model=MODEL,
            policy_id="default",
            policy_version="1",
            uploaded_at=at,
            occurred_at=at,
            latency_ms=1.0,
        )


@contextmanager
def accepting_server() -> Iterator[str]:
    """A local endpoint that takes every call of statements (201), in a thread; its base URL."""

    async def take(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"statements": [{"puid": s["puid"]} for s in body["statements"]]}, status_code=201)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/api/v1/statements", take, methods=["POST"])]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        thread.join(10)


def run_statements_bench(count: int, runs: int = 3, on_stage: Callable[[str], None] = print) -> dict[str, Any]:
    decisions = list(restrictions(count))
    built, sent, bare = [], [], []
    with accepting_server() as endpoint:
        for run in range(runs):
            on_stage(f"run {run + 1} of {runs}: {count} restrictions")
            started = time.perf_counter()
            statements = [s for d in decisions if (s := statement_for(d, RULES)) is not None]
            built.append(count / (time.perf_counter() - started))
            sent.append(asyncio.run(_send(endpoint, statements, through_submitter=True)))
            bare.append(asyncio.run(_send(endpoint, statements, through_submitter=False)))
    submitter, baseline = statistics.median(sent), statistics.median(bare)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "statements": count,
        "runs": runs,
        "batch": BATCH_LIMIT,
        "built_per_second": round(statistics.median(built)),
        "submitted_per_second": round(submitter),
        "bare_post_per_second": round(baseline),
        "submitter_vs_bare": round(submitter / baseline, 3),
    }


async def _send(endpoint: str, statements: list[Any], through_submitter: bool) -> float:
    async with httpx.AsyncClient() as client:
        started = time.perf_counter()
        for start in range(0, len(statements), BATCH_LIMIT):
            batch = statements[start : start + BATCH_LIMIT]
            if through_submitter:
                taken = await submit(client, endpoint, "bench-token", batch)
                assert len(taken.accepted) == len(batch)
            else:
                answer = await client.post(f"{endpoint}/statements", json={"statements": [s.statement for s in batch]})
                assert answer.status_code == 201
        return len(statements) / (time.perf_counter() - started)
