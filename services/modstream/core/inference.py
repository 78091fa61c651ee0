"""Scores for encoded image bytes, from Triton over gRPC.

The worker never decodes images: it sends the bytes as they were uploaded and the
ensemble decodes, resizes and classifies them server-side, where requests from many
events form one batch. Label names and every component's version come back with every
answer, so nothing here knows which models are deployed. An ensemble with a feature
extractor also answers an EMBEDDING; its config's ``embedding_from`` parameter names the
component that made it. The ensembles' preprocess step also answers the decoded image's PDQ
hash (PDQ, its 32 bytes in the order of the hex string; PDQ_QUALITY), for hash banks; ``pdq``
asks the preprocess model alone for it, to hash an image without classifying it. The full
profile's ensemble also answers TEXT, the ocr step's reading of the text in the image.
"""

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tritonclient.grpc.aio as triton
from tritonclient.utils import InferenceServerException

from modstream.core.events import Embedding, ErrorReason, ModelRef, PdqHash, TextReading
from modstream.core.settings import SHADOW_SUFFIX

_REASON = re.compile(r"\[modstream:([a-z_]+)\]\s*(.*)", re.DOTALL)
_OUTPUTS = ("SCORES", "LABELS", "MODEL_VERSION")
_PDQ_OUTPUTS = ("PDQ", "PDQ_QUALITY")
# A valid 1x1 PNG: the cheapest request that makes the model name its labels.
_PROBE = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c49444154789c63f8ffff3f0005fe02fe0def46b80000000049454e44ae426082"
)


class ImageRejected(Exception):
    """Triton looked at this image and will never score it."""

    def __init__(self, reason: ErrorReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


class InferenceUnavailable(Exception):
    """Triton, or the model, is not there right now; worth retrying."""


@dataclass(frozen=True)
class Scores:
    by_label: dict[str, float]
    model: ModelRef
    embedding: Embedding | None = field(default=None, compare=False)
    pdq: PdqHash | None = field(default=None, compare=False)
    text: TextReading | None = field(default=None, compare=False)


class TritonScorer:
    def __init__(self, url: str, model: str, timeout: float, preprocess: str = "preprocess") -> None:
        self._client = triton.InferenceServerClient(url)
        self._model = model
        self._preprocess = preprocess
        self._timeout = timeout
        self._embedding_from: str | None = None

    async def score(self, image: bytes) -> Scores:
        try:
            # No outputs named: every output the model has, EMBEDDING and PDQ included when it has them.
            result = await self._client.infer(self._model, [image_input(image)], client_timeout=self._timeout)
        except InferenceServerException as exc:
            raise classify_failure(exc) from exc
        scores = result.as_numpy("SCORES")
        labels = result.as_numpy("LABELS")
        versions = result.as_numpy("MODEL_VERSION")
        if scores is None or labels is None or versions is None:
            raise InferenceUnavailable(f"{self._model} answered without {_OUTPUTS}")
        model = model_ref(self._model, [v.decode() for v in versions[0]])
        vector = result.as_numpy("EMBEDDING")
        return Scores(
            by_label={label.decode(): float(s) for label, s in zip(labels[0], scores[0], strict=True)},
            model=model,
            embedding=None if vector is None else await self._embedding(vector[0], model),
            pdq=pdq_hash(result),
            text=text_reading(result),
        )

    async def pdq(self, image: bytes) -> PdqHash:
        """The image's PDQ hash from the preprocess model alone: decoded there, not classified
        (only the PDQ outputs are asked for, so it makes no pixels)."""
        outputs = [triton.InferRequestedOutput(name) for name in _PDQ_OUTPUTS]
        try:
            result = await self._client.infer(
                self._preprocess, [image_input(image)], outputs=outputs, client_timeout=self._timeout
            )
        except InferenceServerException as exc:
            raise classify_failure(exc) from exc
        found = pdq_hash(result)
        if found is None:
            raise InferenceUnavailable(f"{self._preprocess} answered without {_PDQ_OUTPUTS}")
        return found

    async def _embedding(self, vector: "np.ndarray[Any, Any]", model: ModelRef) -> Embedding:
        if self._embedding_from is None:
            config = await self._client.get_model_config(self._model, as_json=True, client_timeout=5.0)
            parameters = config.get("config", {}).get("parameters", {})
            self._embedding_from = parameters.get("embedding_from", {}).get("string_value", "")
        source = self._embedding_from
        # In a shadow ensemble the component runs under its shadow name.
        version = model.components.get(source) or model.components.get(source + SHADOW_SUFFIX, "?")
        return Embedding(
            model=f"{source}:{version}",
            dims=int(vector.shape[-1]),
            values_base64=base64.b64encode(vector.astype("<f2").tobytes()).decode(),
        )

    async def probe(self) -> Scores:
        """What the serving model answers for a 1x1 image: its labels and its version."""
        return await self.score(_PROBE)

    async def labels(self) -> list[str]:
        """The serving model's label names."""
        return list((await self.probe()).by_label)

    async def is_ready(self) -> bool:
        try:
            return bool(await self._client.is_model_ready(self._model, client_timeout=5.0))
        except InferenceServerException:
            return False

    async def close(self) -> None:
        await self._client.close()


def image_input(image: bytes) -> triton.InferInput:
    request = triton.InferInput("IMAGE", [1, 1], "BYTES")
    request.set_data_from_numpy(np.array([[image]], dtype=np.object_))
    return request


def pdq_hash(result: triton.InferResult) -> PdqHash | None:
    """The first image's PDQ hash, when the model answered one: PDQ's 32 bytes are the hex
    string's, so ``bytes.hex()`` gives the hex ThreatExchange and HMA write for these pixels."""
    packed, quality = result.as_numpy("PDQ"), result.as_numpy("PDQ_QUALITY")
    if packed is None or quality is None:
        return None
    return PdqHash(hex=packed[0].astype(np.uint8).tobytes().hex(), quality=int(quality[0][0]))


def text_reading(result: triton.InferResult) -> TextReading | None:
    """The first image's text as the ocr step read it, when the ensemble has that step."""
    found = result.as_numpy("TEXT")
    return None if found is None else TextReading.model_validate_json(found[0][0])


def model_ref(ensemble: str, versions: list[str]) -> ModelRef:
    """The ensemble's identity from its components' ``name:version`` strings."""
    components = dict(sorted(entry.partition(":")[::2] for entry in versions))
    return ModelRef(name=ensemble, version="+".join(f"{k}:{v}" for k, v in components.items()), components=components)


def classify_failure(exc: InferenceServerException) -> Exception:
    """Tell a bad image (final) from a missing server or model (retry).

    Only the preprocess model's tagged rejections are final; anything else is
    retried, because turning an outage into error decisions would lose events.
    """
    message = exc.message() or str(exc)
    found = _REASON.search(message)
    if found:
        try:
            reason = ErrorReason(found.group(1))
        except ValueError:
            reason = ErrorReason.REJECTED_BY_MODEL
        return ImageRejected(reason, found.group(2).strip())
    return InferenceUnavailable(f"{exc.status() or 'no status'}: {message}")
