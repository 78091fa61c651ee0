"""Where the model looked: a job's occlusion maps, made on demand for the review page's heat map.

The dashboard does not make maps itself: the composer (``cli/dashboard.py``) hands ``create_app``
an ``ExplainMaps`` (the explain room's, which runs the decision's own models in Triton and keeps
the maps per event and model version). It raises ``ValueError`` when the decision's maps cannot
be made (its model no longer served as it was: 409) and ``ConnectionError`` when Triton does not
answer (503). Labels the maps do not cover are named with the reason, for the page to say.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from modstream.core.events import ModelRef
from modstream.core.storage import ObjectMissing
from modstream.review.web.access import Anyone, visible_job
from modstream.review.web.shared import Shared

router = APIRouter()
TEXT_READ = "text.present"


ExplainMaps = Callable[[str, bytes, ModelRef], Awaitable[dict[str, Any]]]
"""(event id, image, the decision's model) -> the maps as a document: ``maps`` (label ->
``score``, ``cells``), ``method``, ``copies``, ``seconds``, ``cached``."""


def without_map(label: str) -> str:
    """Why a label the decision scored has no occlusion map."""
    if label == TEXT_READ:
        return (
            "made by the ocr step, which reads a larger copy of the image: the occluded copies "
            "are not read (it would cost ~20 ms of CPU each)"
        )
    if label.startswith("text."):
        return "made by the policy's text rules from the words read, not by a model looking at the pixels"
    return "its model gave no score for the occluded copies"


@router.get("/jobs/{job_id}/saliency")
async def job_saliency(request: Request, job_id: str, session: Anyone, dashboard: Shared) -> dict[str, Any]:
    explain: ExplainMaps | None = getattr(request.app.state, "explain", None)
    if explain is None:
        raise HTTPException(501, "this dashboard makes no occlusion maps (started without Triton's address)")
    job, _, _ = await visible_job(dashboard.service, job_id, session)
    if job.model is None:
        raise HTTPException(409, "no model scored this image (a bank entry decided): there is nothing to explain")
    try:
        image = await dashboard.service.image(job)
    except ObjectMissing as exc:
        raise HTTPException(404, "the image is no longer in storage") from exc
    try:
        found = await explain(job.event_id, image, job.model)
    except ValueError as exc:
        raise HTTPException(409, f"no occlusion maps for this decision: {exc}") from exc
    except ConnectionError as exc:
        raise HTTPException(503, f"occlusion maps cannot be made now: {exc}") from exc
    maps = found["maps"]
    return {**found, "without_map": {label: without_map(label) for label in sorted(job.scores) if label not in maps}}
