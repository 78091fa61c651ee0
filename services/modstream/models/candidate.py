"""Is a candidate model fit to serve? Checked before it touches the repository."""

import re
from pathlib import Path

INPUT_SHAPE = (3, 224, 224)  # what the preprocess model gives: 0-255 RGB floats
# Class names; dotted ones (learned heads name their columns by label: emblem.red) too.
LABEL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class CandidateRefused(ValueError):
    pass


def read_label_file(path: Path) -> list[str]:
    try:
        labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CandidateRefused(f"{path}: cannot read the labels file: {exc}") from exc
    bad = [label for label in labels if not LABEL.match(label)]
    if not labels or bad or len(set(labels)) != len(labels):
        raise CandidateRefused(
            f"{path}: labels must be one per line, unique, lowercase letters, digits, '.', - or _ "
            f"({'none found' if not labels else 'offending: ' + ', '.join(bad or ['duplicates'])})"
        )
    return labels


def check_candidate(onnx_file: Path, labels: list[str], input_shape: tuple[int, ...] = INPUT_SHAPE) -> None:
    """Refuse a model that would not load, would not take what its step is given (``input_shape``
    per item: the preprocess model's pixels, or the embedding for heads), or would not give one
    score per label; a trial run on a batch of two proves it."""
    # Imported here: every `modstream` command loads this module, few need onnxruntime.
    import numpy as np
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise CandidateRefused(f"{onnx_file}: onnxruntime cannot load it: {str(exc)[:300]}") from exc
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise CandidateRefused(f"{onnx_file}: it takes {len(inputs)} inputs; the ensemble gives one")
    (given,) = inputs
    if given.type != "tensor(float)":
        raise CandidateRefused(f"{onnx_file}: its input is {given.type}; its step gives float32")
    if len(given.shape) != 1 + len(input_shape) or tuple(given.shape[1:]) != input_shape:
        expected = ", ".join(map(str, input_shape))
        raise CandidateRefused(f"{onnx_file}: its input shape is {given.shape}; expected [batch, {expected}]")
    trial = np.random.default_rng(0).uniform(0, 255, (2, *input_shape)).astype(np.float32)
    try:
        scores = session.run([outputs[0].name], {given.name: trial})[0]
    except Exception as exc:
        raise CandidateRefused(f"{onnx_file}: a trial batch failed: {str(exc)[:300]}") from exc
    if scores.shape != (2, len(labels)):
        raise CandidateRefused(
            f"{onnx_file}: it gives scores of shape {list(scores.shape[1:])} per image "
            f"but the labels file names {len(labels)} labels"
        )
