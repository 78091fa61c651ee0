"""Which servers the local stack runs for the broker's storage, and where the broker's data goes."""

from pathlib import Path

from modstream.core.settings import Settings
from modstream.stack.servers import Layout, broker_store, broker_store_name, kafka, server_names


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(state_dir=tmp_path, s3_endpoint="127.0.0.1:19000", **values)  # type: ignore[arg-type]


def test_memory_storage_runs_no_store(tmp_path: Path) -> None:
    settings = _settings(tmp_path, broker_storage="memory")
    assert broker_store_name(settings) is None
    assert "broker-store" not in server_names(settings)
    broker = kafka(settings, Layout(tmp_path))
    assert "memory://tansu/" in broker.argv and broker.env == {}


def test_s3_storage_keeps_the_bucket_on_a_store_of_its_own(tmp_path: Path) -> None:
    settings = _settings(tmp_path, broker_storage="s3", broker_store_endpoint="127.0.0.1:20000")
    assert broker_store_name(settings) == "broker-store"
    assert server_names(settings) == ["kafka", "broker-store", "s3", "redis", "triton"]
    broker = kafka(settings, Layout(tmp_path))
    assert "s3://modstream-broker/" in broker.argv
    assert broker.env["AWS_ENDPOINT"] == "http://127.0.0.1:20000"


def test_the_store_takes_its_port_and_the_eleven_after_it_and_no_fixed_one(tmp_path: Path) -> None:
    store = broker_store(_settings(tmp_path, broker_store_endpoint="127.0.0.1:20000"), Layout(tmp_path))
    ports = sorted(int(arg.rpartition("=")[2]) for arg in store.argv if "port" in arg.partition("=")[0])
    assert ports == list(range(20000, 20012))
    assert f"-dir={tmp_path / 'data' / 'broker-store'}" in store.argv
    assert "-bucket=modstream-broker" in store.argv


def test_the_store_at_the_s3_address_is_the_s3_server(tmp_path: Path) -> None:
    settings = _settings(tmp_path, broker_storage="s3", broker_store_endpoint="127.0.0.1:19000")
    assert broker_store_name(settings) == "s3"
    assert "broker-store" not in server_names(settings)
    assert kafka(settings, Layout(tmp_path)).env["AWS_ENDPOINT"] == "http://127.0.0.1:19000"


def test_a_store_past_the_size_where_the_broker_slows_is_named_with_the_way_out(tmp_path: Path) -> None:
    from modstream.stack.supervisor import FULL_BROKER_STORE_BYTES, full_broker_store

    settings = _settings(tmp_path, broker_storage="s3", broker_store_endpoint="127.0.0.1:20000")
    folder = tmp_path / "data" / "broker-store"
    folder.mkdir(parents=True)
    (folder / "volume.dat").write_bytes(b"x" * 1024)
    assert full_broker_store(settings) is None
    with (folder / "volume.dat").open("r+b") as volume:
        volume.truncate(FULL_BROKER_STORE_BYTES)
    warning = full_broker_store(settings)
    assert warning is not None and "256 MB" in warning and str(folder) in warning
    assert full_broker_store(_settings(tmp_path, broker_storage="memory")) is None
