"""What keeping occlusion maps of blocks costs the pipeline, measured rather than estimated: the
same kind of uploads through a worker whose policy blocks a known share of them, with
``saliency_on_block`` off and on, in alternating order, the medians of the repetitions.

The worker is one of its own (started by the caller, ``cli/bench.py``), on private topics, with a
policy folder of its own: the configured policies, plus two tenants that block every image they
are given (``sexual.any`` from 0), the second asking for maps of its blocks. Every upload whose
turn it is (``share`` of them, spread evenly) goes to one of those two, the rest to ``bench``
under the configured default policy: the share of blocks with maps is fixed before the run,
whatever the models score. The maps the runs made are erased at the end.
"""

import asyncio
import shutil
import statistics
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from modstream.bench.pipeline_run import PipelineResult, run_pipeline
from modstream.bench.run import uploads
from modstream.core.events import ModerationDecision, Outcome, new_id
from modstream.core.ports import free_port
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.explain.store import SaliencyStore

OTHERS = "bench"
BLOCKS = {False: "bench-blocks", True: "bench-blocks-maps"}  # saliency_on_block -> tenant
REPETITIONS = 3
WARM_UP = 20  # uploads, half of them blocked with maps: the worker's first maps and inferences


def private_settings(settings: Settings, folder: Path) -> Settings:
    """Settings for the bench's own worker: topics, consumer group, state and policies under
    ``folder``, the blocking tenants added to a copy of the configured policies."""
    run = new_id()[:8]
    policies = folder / "policies"
    shutil.copytree(settings.policies_dir, policies)
    (policies / "tenants").mkdir(exist_ok=True)
    for maps, tenant in BLOCKS.items():
        policy = {
            "version": f"{tenant}-{run}",
            "saliency_on_block": maps,
            "labels": {"sexual.any": {"review_at": 0.0, "block_at": 0.0}},
        }
        (policies / "tenants" / f"{tenant}.yaml").write_text(yaml.safe_dump(policy))
    topics = ("uploads", "decisions", "review_requests", "dead_letter", "shadow", "s3_notifications")
    return settings.model_copy(
        update={f"topic_{name}": f"bench-{run}.{name}" for name in topics}
        | {
            "consumer_group": f"bench-{run}-worker",
            "policies_dir": policies,
            "state_dir": folder / "state",
            "worker_web_port": free_port(),
            "tenants": None,  # the bench's tenants, whatever the configured worker admits
        }
    )


def blocked_turn(share: float) -> Callable[[int], bool]:
    """Whether upload ``index`` is one of the ``share`` sent to a blocking tenant: spread evenly,
    so that every stretch of the run holds its part of them."""
    # Rounded first: 100 * 0.29 is 28.999999999999996 in floating point, one upload short.
    return lambda index: int(round((index + 1) * share, 9)) > int(round(index * share, 9))


def run_saliency_cost_bench(
    settings: Settings,
    pool: list[bytes],
    count: int,
    share: float,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> dict[str, Any]:
    """``count`` uploads per run through the worker of ``settings`` (``private_settings``),
    ``REPETITIONS`` runs with maps of blocks and as many without, alternating."""
    blocked = blocked_turn(share)
    made: set[str] = set()
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}

    def one_run(maps: bool, images: int, turn: Callable[[int], bool] = blocked) -> dict[str, Any]:
        decisions: list[ModerationDecision] = []
        result: PipelineResult = asyncio.run(
            run_pipeline(
                settings,
                uploads(pool, images),
                on_decided=decisions.append,
                tenant_of=lambda index: BLOCKS[maps] if turn(index) else OTHERS,
            )
        )
        with_maps = {d.event_id for d in decisions if d.saliency is not None}
        made.update(with_maps)
        return asdict(result) | {
            "saliency_on_block": maps,
            "blocks": sum(d.decision is Outcome.BLOCK for d in decisions),
            "blocks_with_maps": len(with_maps),
            "seconds_per_map_median": _median([d.saliency.seconds for d in decisions if d.saliency is not None]),
        }

    on_stage(f"warming the worker up: {WARM_UP} uploads, half of them blocked with maps")
    one_run(True, WARM_UP // 2, blocked_turn(0.5))
    one_run(False, WARM_UP // 2, blocked_turn(0.5))
    try:
        for repetition in range(REPETITIONS):
            # Alternating which goes first, so that a drift of the machine falls on both alike.
            for maps in (False, True) if repetition % 2 == 0 else (True, False):
                on_stage(
                    f"run {repetition + 1} of {REPETITIONS}, saliency_on_block {'on' if maps else 'off'}: "
                    f"{count} uploads, {share:.0%} of them blocked"
                )
                runs[maps].append(one_run(maps, count))
    finally:
        on_stage(f"erasing the {len(made)} blocks' maps the runs made")
        asyncio.run(SaliencyStore(ObjectStore(settings), settings.archive_bucket).erase(made))
    summary = {("on" if maps else "off"): _medians(done) for maps, done in runs.items()}
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": settings.profile,
        "ensemble": settings.triton_model,
        "uploads_per_run": count,
        "blocked_share": share,
        "blocked_per_run": sum(blocked(i) for i in range(count)),
        "repetitions": REPETITIONS,
        "publish": "all at once: latency includes the wait in the queue",
        "worker_concurrency": settings.worker_concurrency,
        "medians": summary,
        "on_vs_off": {
            "images_per_second": _ratio(summary["on"]["images_per_second"], summary["off"]["images_per_second"]),
            "latency_ms_p50": _ratio(summary["on"]["latency_ms_p50"], summary["off"]["latency_ms_p50"]),
            "latency_ms_p95": _ratio(summary["on"]["latency_ms_p95"], summary["off"]["latency_ms_p95"]),
        },
        "runs": runs[False] + runs[True],
    }


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("images_per_second", "latency_ms_p50", "latency_ms_p95", "blocks", "blocks_with_maps")
    found: dict[str, Any] = {key: _median([run[key] for run in runs]) for key in keys}
    found["seconds_per_map_median"] = _median([r["seconds_per_map_median"] for r in runs if r["blocks_with_maps"]])
    found["decided_of_uploads"] = f"{sum(r['decided'] for r in runs)} / {sum(r['images'] for r in runs)}"
    return found


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _ratio(on: float | None, off: float | None) -> float | None:
    return round(on / off, 3) if on is not None and off else None
