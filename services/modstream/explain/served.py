"""Occlusion maps from the models that decided: the copies go through the decision's own ensemble,
step by step, at the component versions the decision names.

The ensemble's steps are read from Triton (its ``ensemble_scheduling``), so the full and the
light profile, and any ensemble built like them, are walked the same way: the preprocess step
runs once on the image and its PIXELS are painted over (``occlusion``); every step fed by those
pixels (the classifiers, then what their outputs feed: the learned heads, the taxonomy) runs on
the image and its copies, in requests of at most the ensemble's batch size, all in flight at
once so that Triton batches them. A step the pixels do not reach (``ocr``, which reads a larger
copy of the image and would cost ~20 ms of CPU per copy) is not run: the taxonomy is given, for
that component, scores with no class, so it leaves that component's labels out, and those labels
get no map. Classes become labels in the taxonomy model only, as for the decision.

Each pinned component is asked for at the version the decision names; one Triton no longer
serves is ``CannotExplain``, as is a taxonomy file that changed since (its hash is in the
answer). A Triton that does not answer is ``ExplainUnavailable``.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import tritonclient.grpc.aio as triton
from pydantic import BaseModel, ConfigDict, Field
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from modstream.core.events import ModelRef
from modstream.core.inference import InferenceUnavailable, classify_failure, image_input
from modstream.explain.occlusion import MAP_SIDE, Masking, Occlusion, drop_maps, occluded

# The taxonomy step's inputs: three per component (taxonomy/1/model.py).
_PARTS = ("_SCORES", "_LABELS", "_VERSION")
_NO_CLASS = b"(not run on the copies)"


class CannotExplain(ValueError):
    """This decision's maps cannot be made by the models served now; the message says why."""


class ExplainUnavailable(ConnectionError):
    """Triton did not answer; worth asking again."""


class LabelMap(BaseModel):
    model_config = ConfigDict(frozen=True)

    score: float = Field(description="the label's score on the image, in the same run as its copies")
    cells: list[list[float]] = Field(
        description=f"{MAP_SIDE} rows of {MAP_SIDE} cells (16 px of the 224 px input each): the mean fall of the "
        "score when a patch covering the cell was hidden; negative where hiding raised it"
    )


class Saliency(BaseModel):
    """Every label's occlusion map for one image, and what made them."""

    model_config = ConfigDict(frozen=True)

    model: ModelRef = Field(description="the ensemble and component versions that scored the copies")
    method: str
    copies: int = Field(description="images scored: the image and its occluded copies")
    seconds: float = Field(description="from the request to the last map")
    computed_at: datetime
    maps: dict[str, LabelMap]


@dataclass(frozen=True)
class _Step:
    model: str
    inputs: dict[str, str]  # the model's input -> the ensemble's tensor
    outputs: dict[str, str]  # the model's output -> the ensemble's tensor


class ServedSaliency:
    """Makes maps with the Triton at ``url``; one per process, its client reused."""

    def __init__(self, url: str, timeout: float = 30.0, masking: Masking | None = None) -> None:
        self._client = triton.InferenceServerClient(url)
        self._timeout = timeout
        self.masking: Masking = masking or Occlusion()
        self._ensembles: dict[str, tuple[list[_Step], int]] = {}

    async def explain(self, image: bytes, model: ModelRef) -> Saliency:
        started = time.perf_counter()
        steps, batch = await self._ensemble(model.name)
        first, rest = _pixels_step(steps)
        pixels_tensor = first.outputs["PIXELS"]
        answer = await self._infer(first.model, "", [image_input(image)], ["PIXELS"])
        pixels = answer.as_numpy("PIXELS")
        if pixels is None:
            raise CannotExplain(f"{first.model} answered without PIXELS")
        masks = self.masking.masks()
        copies = occluded(pixels.astype(np.float32), masks)
        chunks = [copies[i : i + batch] for i in range(0, len(copies), batch)]
        runs = await asyncio.gather(*(self._walk(rest, {pixels_tensor: chunk}, model) for chunk in chunks))
        scores = np.concatenate([run["SCORES"] for run in runs]).astype(np.float32)
        labels = [name.decode() for name in runs[0]["LABELS"][0]]
        versions = [v.decode() for v in runs[0]["MODEL_VERSION"][0] if not v.decode().endswith(":-")]
        answered = _check_versions(model, versions)
        maps = drop_maps(scores, masks)
        return Saliency(
            model=answered,
            method=self.masking.name,
            copies=len(copies),
            seconds=round(time.perf_counter() - started, 3),
            computed_at=datetime.now(UTC),
            maps={
                label: LabelMap(score=round(float(scores[0, i]), 5), cells=np.round(maps[i], 5).tolist())
                for i, label in enumerate(labels)
            },
        )

    async def _walk(
        self, steps: Sequence[_Step], tensors: dict[str, npt.NDArray[Any]], model: ModelRef
    ) -> dict[str, npt.NDArray[Any]]:
        """Run every step the pixels reach, in waves of the steps whose inputs are all there."""
        known, waiting = dict(tensors), list(steps)
        n = len(next(iter(tensors.values())))
        while waiting:
            ready = [step for step in waiting if all(t in known for t in step.inputs.values())]
            if not ready:
                ready = [step for step in waiting if _fillable(step, known)]
                if not ready:
                    break  # steps the pixels never reach (ocr): not run
                for step in ready:
                    for name, tensor in step.inputs.items():
                        if tensor not in known:
                            known[tensor] = _placeholder(name, n, model)
            answers = await asyncio.gather(*(self._run(step, known, model) for step in ready))
            for answer in answers:
                known.update(answer)
            waiting = [step for step in waiting if step not in ready]
        missing = [name for name in ("SCORES", "LABELS", "MODEL_VERSION") if name not in known]
        if missing:
            raise CannotExplain(f"{model.name}'s steps fed by the pixels do not make its {', '.join(missing)}")
        return known

    async def _run(
        self, step: _Step, known: dict[str, npt.NDArray[Any]], model: ModelRef
    ) -> dict[str, npt.NDArray[Any]]:
        inputs = []
        for name, tensor in step.inputs.items():
            values = known[tensor]
            given = triton.InferInput(name, list(values.shape), np_to_triton_dtype(values.dtype))
            given.set_data_from_numpy(values)
            inputs.append(given)
        # The taxonomy's version is its file's hash, checked in its answer; the others are Triton's.
        version = "" if _taxonomy_shaped(step) else model.components.get(step.model, "")
        answer = await self._infer(step.model, version, inputs, list(step.outputs))
        found = {}
        for name, tensor in step.outputs.items():
            values = answer.as_numpy(name)
            if values is None:
                raise CannotExplain(f"{step.model} answered without {name}")
            found[tensor] = values
        return found

    async def _infer(
        self, name: str, version: str, inputs: list[triton.InferInput], outputs: list[str]
    ) -> triton.InferResult:
        try:
            return await self._client.infer(
                name,
                inputs,
                model_version=version,
                outputs=[triton.InferRequestedOutput(o) for o in outputs],
                client_timeout=self._timeout,
            )
        except InferenceServerException as exc:
            raise _failure(exc, name, version) from exc

    async def _ensemble(self, name: str) -> tuple[list[_Step], int]:
        if name not in self._ensembles:
            try:
                config = (await self._client.get_model_config(name, as_json=True, client_timeout=5.0))["config"]
            except InferenceServerException as exc:
                raise _failure(exc, name, "") from exc
            scheduling = config.get("ensemble_scheduling", {}).get("step", [])
            if not scheduling:
                raise CannotExplain(f"{name} is not an ensemble: its steps cannot be walked")
            steps = [
                _Step(s["model_name"], dict(s.get("input_map", {})), dict(s.get("output_map", {}))) for s in scheduling
            ]
            self._ensembles[name] = (steps, max(int(config.get("max_batch_size", 8)), 1))
        return self._ensembles[name]

    async def close(self) -> None:
        await self._client.close()


def _pixels_step(steps: list[_Step]) -> tuple[_Step, list[_Step]]:
    """The step that makes PIXELS from the ensemble's IMAGE, and the others."""
    for step in steps:
        if "PIXELS" in step.outputs and "IMAGE" in step.inputs.values():
            return step, [s for s in steps if s is not step]
    raise CannotExplain("the ensemble has no step making PIXELS from its IMAGE")


def _fillable(step: _Step, known: dict[str, npt.NDArray[Any]]) -> bool:
    """A taxonomy-shaped step (three inputs per component) with some component's inputs there:
    the others can be stood in for."""
    return _taxonomy_shaped(step) and any(tensor in known for tensor in step.inputs.values())


def _taxonomy_shaped(step: _Step) -> bool:
    return bool(step.inputs) and all(name.endswith(_PARTS) for name in step.inputs)


def _placeholder(name: str, n: int, model: ModelRef) -> npt.NDArray[Any]:
    """A component's stand-in answer for ``n`` copies: one score for a class no rule names, and
    the version the decision names (``name:-`` when it names none, dropped from the answer)."""
    component, _, part = name.rpartition("_")
    if part == "SCORES":
        return np.zeros((n, 1), dtype=np.float32)
    if part == "LABELS":
        return np.array([[_NO_CLASS]] * n, dtype=np.object_)
    return np.array([[f"{component}:{model.components.get(component, '-')}".encode()]] * n, dtype=np.object_)


def _check_versions(decided: ModelRef, answered: list[str]) -> ModelRef:
    """What scored the copies, refused unless every component in it is the decision's version."""
    components = dict(entry.partition(":")[::2] for entry in answered)
    differ = [
        f"{name} {decided.components.get(name, 'absent')} (now {version})"
        for name, version in sorted(components.items())
        if decided.components.get(name) != version
    ]
    if differ:
        raise CannotExplain(f"the decision's model is no longer served as it was: {'; '.join(differ)}")
    return decided


def _failure(exc: InferenceServerException, model: str, version: str) -> Exception:
    status = str(exc.status() or "")
    if "UNAVAILABLE" in status or "DEADLINE" in status:
        return ExplainUnavailable(f"Triton did not answer: {exc.message()}")
    message = exc.message() or str(exc)
    if "unknown model" in message.lower() or "not found" in message.lower() or "not ready" in message.lower():
        at = f" version {version}" if version else ""
        return CannotExplain(f"{model}{at} is not served now ({message})")
    if isinstance(failure := classify_failure(exc), InferenceUnavailable):
        return ExplainUnavailable(str(failure))
    return CannotExplain(str(failure))
