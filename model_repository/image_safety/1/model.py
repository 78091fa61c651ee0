"""Run an ONNX image classifier with onnxruntime; answer scores, labels and version.

The labels travel with every response, read from this version's ``labels.txt`` (or
the model's), so a client always knows which names the scores it holds belong to and
which version produced them, even while versions are being swapped.
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
        params = json.loads(args["model_config"]).get("parameters", {})
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
        self.labels = read_labels(version_dir)
        width = self.session.get_outputs()[0].shape[-1]
        if width != len(self.labels):
            raise ValueError(f"{onnx_file} gives {width} scores but labels.txt names {len(self.labels)}")
        self.version = f"{args['model_name']}:{args['model_version']}"

    def execute(self, requests: list) -> list:
        batches = [pb_utils.get_input_tensor_by_name(r, "PIXELS").as_numpy() for r in requests]
        scores = self.session.run(None, {self.input_name: np.concatenate(batches)})[0]
        responses, start = [], 0
        for batch in batches:
            part = scores[start : start + len(batch)].astype(np.float32)
            start += len(batch)
            responses.append(self._response(part))
        return responses

    def _response(self, scores: np.ndarray) -> "pb_utils.InferenceResponse":
        n = len(scores)
        labels = np.array([[name.encode() for name in self.labels]] * n, dtype=np.object_)
        version = np.array([[self.version.encode()]] * n, dtype=np.object_)
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("SCORES", scores),
                pb_utils.Tensor("LABELS", labels),
                pb_utils.Tensor("MODEL_VERSION", version),
            ]
        )
