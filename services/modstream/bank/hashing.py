"""An image's hashes for a bank, outside the pipeline: every signal type that hashes bytes
here (``bank/signals``), PDQ from the same Triton preprocess that hashes uploads, so a banked
image and its re-upload are hashed alike."""

from collections.abc import Sequence
from pathlib import Path

from modstream.bank.signals import hash_image
from modstream.core.events import ImageHashes, PdqHash
from modstream.core.inference import ImageRejected, TritonScorer
from modstream.core.settings import Settings


async def hash_files(settings: Settings, paths: Sequence[Path]) -> list[ImageHashes]:
    """Each file's hashes; a file Triton cannot decode is named in the ``ImageRejected``."""
    scorer = TritonScorer(settings.triton_grpc, settings.triton_model, settings.inference_timeout)
    try:
        hashed = []
        for path in paths:
            data = path.read_bytes()
            try:
                pdq = await scorer.pdq(data)
            except ImageRejected as exc:
                raise ImageRejected(exc.reason, f"{path}: {exc.message}") from exc
            hashed.append(hash_image(data).model_copy(update={"pdq": pdq}))
        return hashed
    finally:
        await scorer.close()


def pdq_of(hex_hash: str, quality: int = 100) -> PdqHash:
    """A PDQ hash given by hand (its quality unknown: taken as vouched for)."""
    try:
        return PdqHash(hex=hex_hash.strip().lower(), quality=quality)
    except ValueError as exc:
        raise ValueError(f"{hex_hash!r} is not a PDQ hash (64 hex digits)") from exc
