"""Score images with the serving ensemble, outside the pipeline: for people looking at labels."""

from modstream.core.inference import ImageRejected, TritonScorer
from modstream.core.settings import Settings


async def score_images(settings: Settings, images: dict[str, bytes]) -> dict[str, dict[str, float] | ImageRejected]:
    """Name -> every label's score, or why the ensemble would not score the image."""
    scorer = TritonScorer(settings.triton_grpc, settings.triton_model, settings.inference_timeout)
    scored: dict[str, dict[str, float] | ImageRejected] = {}
    try:
        for name, data in images.items():
            try:
                scored[name] = (await scorer.score(data)).by_label
            except ImageRejected as exc:
                scored[name] = exc
    finally:
        await scorer.close()
    return scored
