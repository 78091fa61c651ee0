"""A learned ``emblem.starred`` head served by a running Triton, the fastest way there is.

``modstream model train-head`` learns from reviewers' verdicts in the archive (the lifecycle
test does that end to end, minutes of uploads and verdicts); a test that only needs the head
served skips the archive: it embeds synthetic images (``bench/emblem.py``) with the served
ensemble, fits the head as ``train-head`` does (``learn.train.fit_head``), writes the version's
files (``models.heads``) and loads them into Triton as the ``heads`` model's next version,
straight from the request (Triton's load with files), so the repository on disk is never
touched. ``restore`` loads the repository's own ``heads`` again.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import tritonclient.http as triton_http
from modstream.bench.emblem import examples
from modstream.bench.learning import embed
from modstream.core.settings import Settings
from modstream.learn.train import fit_head
from modstream.models.heads import Counts, HeadCard, Heads, no_heads

from tests.conftest import SHARED_CACHE

LABEL = "emblem.starred"
VERSION = 2
TRAINING = 48  # half with the emblem: embedded and fitted in ~6 s on 2 cores


async def trained_heads(settings: Settings) -> Heads:
    shown = list(examples(SHARED_CACHE, TRAINING, seed=1))
    vectors = await embed(settings, [e.data for e in shown], lambda: None)  # as the learning bench embeds
    fitted = fit_head(LABEL, vectors, np.array([e.emblem for e in shown]))
    card = HeadCard(
        label=LABEL,
        embedding_model="efficientnet_lite0:1",
        trained_at=datetime.now(UTC),
        trained_by="tests/emblem_head.py",
        window_start=datetime.now(UTC),
        window_end=datetime.now(UTC),
        train=Counts(positives=TRAINING // 2, negatives=TRAINING // 2),
        held_out=Counts(positives=0, negatives=0),
        threshold=0.5,
        precision=fitted.precision,
        recall=fitted.recall,
        f1=fitted.f1,
        average_precision=fitted.average_precision,
        curve=fitted.curve,
        regularisation=fitted.regularisation,
        training_seconds=fitted.seconds,
    )
    return no_heads().with_head(fitted.weights, fitted.bias, card)


def serve(settings: Settings, heads: Heads, folder: Path) -> None:
    """``heads`` as the ``heads`` model's version ``VERSION``, loaded from the request's files."""
    heads.write(folder)
    repository = settings.model_repository / "heads"
    config = (repository / "config.pbtxt").read_text()
    runner = (repository / "1" / "model.py").read_bytes()
    files = {f"file:{VERSION}/{path.name}": path.read_bytes() for path in folder.iterdir()}
    files[f"file:{VERSION}/model.py"] = runner
    client = triton_http.InferenceServerClient(settings.triton_http)
    client.load_model("heads", config=json.dumps(_config_json(config)), files=files)


def restore(settings: Settings) -> None:
    triton_http.InferenceServerClient(settings.triton_http).load_model("heads")


def _config_json(pbtxt: str) -> dict[str, object]:
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse(pbtxt, model_config_pb2.ModelConfig())
    found: dict[str, object] = json_format.MessageToDict(config, preserving_proto_field_name=True)
    return found
