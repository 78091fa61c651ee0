"""The ensemble's last step: each component's class scores -> one score per taxonomy label.

The taxonomy file (``taxonomy.yaml`` in this model's folder, or the file the
``taxonomy_file`` parameter names, relative to it) is read when the model loads: renaming
a label is an edit there and a reload of this model. The components are this model's
inputs, three per component: ``<component>_SCORES``, ``<component>_LABELS`` and
``<component>_VERSION``. Classes are found by name in the labels each component answers
with, so a component's new version may reorder or add classes freely; a label whose
component is not an input, or lacks one of its classes, is left out of the answer (the
worker's policies then see it as missing and send images to review, never decide blind).

The file's ``learned: {from: COMPONENT}`` passes every class of that component on as a
label of the same name (learned heads: their classes are labels made by the project), after
the file's own labels and never in place of one.

Out come ``SCORES`` and ``LABELS`` (one per label, in the file's order, then the learned) and
``MODEL_VERSION``: ``<component>:<version>`` of every component that answered, and
``taxonomy:<first 12 hex of the file's SHA-256>``.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils
import yaml

PARTS = ("SCORES", "LABELS", "VERSION")


class Rule:
    """How one label is made: the columns of its component's scores, and how they combine."""

    def __init__(self, label: str, spec: dict) -> None:
        self.label = label
        self.component = str(spec["from"])
        self.classes = [str(name) for name in spec["classes"]]
        self.combine = str(spec.get("combine", "one"))
        if self.combine not in ("one", "max", "sum") or (self.combine == "one") != (len(self.classes) == 1):
            raise ValueError(f"{label}: combine {self.combine!r} does not fit {len(self.classes)} classes")

    def score(self, scores: np.ndarray, columns: list[int]) -> np.ndarray:
        picked = scores[:, columns]
        return picked.sum(axis=1) if self.combine == "sum" else picked.max(axis=1)


def read_rules(path: Path) -> tuple[list[Rule], str | None]:
    """The file's rules, and the component whose classes are learned labels (if any)."""
    data = yaml.safe_load(path.read_text())
    learned = (data.get("learned") or {}).get("from")
    return [Rule(label, spec) for label, spec in (data.get("labels") or {}).items()], learned


def components_of(input_names: list[str]) -> list[str]:
    """The components among this model's inputs, in their order."""
    found: list[str] = []
    for name in input_names:
        component, _, part = name.rpartition("_")
        if part in PARTS and component not in found:
            found.append(component)
    return found


class Taxonomy:
    """The rules for the components present, with each component's class columns found by name."""

    def __init__(self, rules: list[Rule], components: list[str], learned: str | None = None) -> None:
        self.rules = [rule for rule in rules if rule.component in components]
        self.learned = learned if learned in components else None
        self._columns: dict[tuple[str, tuple], dict[str, list[int]]] = {}

    def columns(self, component: str, classes: tuple) -> dict[str, list[int]]:
        """Label -> its columns in this component's scores (labels whose classes are all there).

        ``classes`` are the names the component answered with, as bytes or str; they are
        decoded only the first time a component answers with them (ImageNet has 1000)."""
        key = (component, classes)
        if key not in self._columns:
            names = [c.decode() if isinstance(c, bytes) else c for c in classes]
            position = {name: i for i, name in enumerate(names)}
            self._columns[key] = {
                rule.label: [position[c] for c in rule.classes]
                for rule in self.rules
                if rule.component == component and all(c in position for c in rule.classes)
            }
        return self._columns[key]

    def apply(self, answers: dict[str, tuple[np.ndarray, tuple]]) -> tuple[np.ndarray, list[str]]:
        """Component -> (scores [n, k], class names) into label scores [n, labels] and their names."""
        labels, columns = [], []
        for rule in self.rules:
            scores, classes = answers[rule.component]
            found = self.columns(rule.component, classes).get(rule.label)
            if found is not None:
                labels.append(rule.label)
                columns.append(rule.score(scores, found))
        if self.learned is not None:
            scores, classes = answers[self.learned]
            for i, name in enumerate(classes):
                label = name.decode() if isinstance(name, bytes) else name
                if label not in labels:
                    labels.append(label)
                    columns.append(scores[:, i])
        n = len(next(iter(answers.values()))[0])
        matrix = np.stack(columns, axis=1) if columns else np.zeros((n, 0))
        return matrix.astype(np.float32), labels


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = config.get("parameters", {})
        folder = Path(args["model_repository"])
        relative = params.get("taxonomy_file", {}).get("string_value", "taxonomy.yaml")
        path = (folder / relative).resolve()
        self.components = components_of([entry["name"] for entry in config["input"]])
        rules, learned = read_rules(path)
        self.taxonomy = Taxonomy(rules, self.components, learned)
        self.version = f"taxonomy:{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"

    def execute(self, requests: list) -> list:
        return [self._answer(request) for request in requests]

    def _answer(self, request) -> "pb_utils.InferenceResponse":
        answers, versions = {}, []
        for component in self.components:
            scores = pb_utils.get_input_tensor_by_name(request, f"{component}_SCORES").as_numpy()
            labels = pb_utils.get_input_tensor_by_name(request, f"{component}_LABELS").as_numpy()
            version = pb_utils.get_input_tensor_by_name(request, f"{component}_VERSION").as_numpy()
            answers[component] = (scores, tuple(labels[0]))
            versions.append(version[0][0])
        scores, labels = self.taxonomy.apply(answers)
        n = len(scores)
        names = np.array([[label.encode() for label in labels]] * n, dtype=np.object_)
        version_row = np.array([[*versions, self.version.encode()]] * n, dtype=np.object_)
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("SCORES", scores),
                pb_utils.Tensor("LABELS", names),
                pb_utils.Tensor("MODEL_VERSION", version_row),
            ]
        )
