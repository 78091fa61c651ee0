import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.storage import ObjectStore
from modstream.models.taxonomy import read_taxonomy
from modstream.policy.loader import load_policies

from tests.conftest import policies_reviewing
from tests.otlp import OtlpReceiver
from tests.workers import spawn_worker, stop_worker

WORKER_MAX_IMAGE_BYTES = 5 * 1024 * 1024
# What a decision of the e2e workers scores: every label of the model, and the text labels the
# shipped default policy's text rules score from what the ocr step read.
DECIDED_LABELS = sorted(
    [
        *read_taxonomy(PROJECT_ROOT / "model_repository").labels,
        *load_policies(PROJECT_ROOT / "config" / "policies").default.text.labels(),
    ]
)


REVIEW_TENANT = "review-e2e"
REVIEW_QUEUE = "e2e-review"
TRACED_TENANT = "traced-e2e"  # reviews everything too, in a queue of its own
TRACED_QUEUE = "e2e-traced"
NOTIFIED_BUCKET = "e2e-notified"
RAISED_TENANT = "raised-e2e"  # test_raised_audit_rate.py raises its audit rate
# Both block every image the models score (test_pipeline.py); the first keeps occlusion maps of
# its blocks, the second does not ask for them.
MAPS_TENANT = "maps-e2e"
BLOCKS_TENANT = "blocks-e2e"


@pytest.fixture(scope="session")
def worker_settings(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    queues = {REVIEW_TENANT: REVIEW_QUEUE, TRACED_TENANT: TRACED_QUEUE}
    policies = policies_reviewing(tmp_path_factory.mktemp("policies"), queues, "e2e-1")
    for tenant, maps in ((MAPS_TENANT, "\nsaliency_on_block: true"), (BLOCKS_TENANT, "")):
        (policies / "tenants" / f"{tenant}.yaml").write_text(
            f'version: "{tenant}-1"{maps}\nlabels:\n  sexual.any: {{review_at: 0.0, block_at: 0.0}}\n'
        )
    settings = stack_settings.model_copy(
        update={
            "max_image_bytes": WORKER_MAX_IMAGE_BYTES,
            "consumer_group": "e2e-worker",
            "policies_dir": policies,
            # Only the tenants these tests use: any other is refused at intake.
            "tenants": ["e2e", REVIEW_TENANT, TRACED_TENANT, "reload-e2e", RAISED_TENANT, MAPS_TENANT, BLOCKS_TENANT],
            "trace_exporter": "otlp",
            # Bucket notifications (test_event_sources.py): one bucket mapped to a tenant, and
            # the uploads bucket, whose keys start with the tenant.
            "allowed_buckets": [stack_settings.uploads_bucket, NOTIFIED_BUCKET],
            "notification_tenants": {NOTIFIED_BUCKET: "e2e"},
            "notification_tenant_from_key": True,
        }
    )
    for bucket in settings.allowed_buckets:
        ObjectStore(settings).ensure_bucket(bucket)
    return settings


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def worker_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The worker's log (JSON lines): tests wait for what it says it did, e.g. skip a replay."""
    return tmp_path_factory.mktemp("worker") / "worker.log"


@pytest.fixture(scope="session")
def worker(worker_settings: Settings, otlp: OtlpReceiver, worker_log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process (``modstream worker``), stopped by PID at the end.

    It sends its spans over OTLP, configured only by the standard variables, to a receiver
    in this process.
    """
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    process = spawn_worker(worker_settings, worker_log, env=tracing)
    try:
        yield process
    finally:
        stop_worker(process)
