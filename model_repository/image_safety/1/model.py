"""Run an ONNX classifier with onnxruntime; answer scores, labels and version.

Every component of the ensemble runs on this file: the ONNX graph does the component's
own input transform, so all take the preprocess model's pixels (learned heads take the
embedding instead: the input is whichever one the config declares, given as float32). The labels travel with
every response, read from this version's ``labels.txt`` (or the model's), so whoever
holds the scores knows which names they belong to and which version produced them, even
while versions are being swapped. Outputs the config declares beyond SCORES, LABELS and
MODEL_VERSION (the EMBEDDING of a feature extractor) are the ONNX outputs of the same
name in lower case, cast to the declared type.
"""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


def read_labels(version_dir: Path) -> list[str]:
    for candidate in (version_dir / "labels.txt", version_dir.parent / "labels.txt"):
        if candidate.is_file():
            return [line.strip() for line in candidate.read_text().splitlines() if line.strip()]
    raise FileNotFoundError(f"no labels.txt in {version_dir} or {version_dir.parent}")


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = config.get("parameters", {})
        version_dir = Path(args["model_repository"]) / args["model_version"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params["intra_op_threads"]["string_value"])
        # Idle onnxruntime threads spin by default, taking CPU from the preprocess model
        # and the I/O around it; served beside them, waiting quietly is faster overall.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if args["model_instance_kind"] == "GPU":
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(args["model_instance_device_id"])}))
        onnx_file = version_dir / params["onnx_file"]["string_value"]
        self.session = ort.InferenceSession(str(onnx_file), options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.given = config["input"][0]["name"]
        self.labels = read_labels(version_dir)
        width = self.session.get_outputs()[0].shape[-1]
        if width != len(self.labels):
            raise ValueError(f"{onnx_file} gives {width} scores but labels.txt names {len(self.labels)}")
        self.version = f"{args['model_name']}:{args['model_version']}"
        self._labels_row = np.array([[name.encode() for name in self.labels]], dtype=np.object_)
        self.extra = [
            (o["name"], pb_utils.triton_string_to_numpy(o["data_type"]))
            for o in config["output"]
            if o["name"] not in ("SCORES", "LABELS", "MODEL_VERSION")
        ]
        self.run_names = [self.session.get_outputs()[0].name, *(name.lower() for name, _ in self.extra)]

    def execute(self, requests: list) -> list:
        batches = [pb_utils.get_input_tensor_by_name(r, self.given).as_numpy() for r in requests]
        given = np.concatenate(batches).astype(np.float32, copy=False)
        scores, *extras = self.session.run(self.run_names, {self.input_name: given})
        responses, start = [], 0
        for batch in batches:
            end = start + len(batch)
            responses.append(self._response(scores[start:end], [extra[start:end] for extra in extras]))
            start = end
        return responses

    def _response(self, scores: np.ndarray, extras: list) -> "pb_utils.InferenceResponse":
        n = len(scores)
        labels = np.repeat(self._labels_row, n, axis=0)
        version = np.array([[self.version.encode()]] * n, dtype=np.object_)
        tensors = [
            pb_utils.Tensor("SCORES", scores.astype(np.float32)),
            pb_utils.Tensor("LABELS", labels),
            pb_utils.Tensor("MODEL_VERSION", version),
        ]
        for (name, kind), values in zip(self.extra, extras):
            tensors.append(pb_utils.Tensor(name, np.ascontiguousarray(values.astype(kind))))
        return pb_utils.InferenceResponse(output_tensors=tensors)
