"""A killed nanio's half-done writes, removed by the stack before the S3 server starts again."""

from pathlib import Path

from modstream.core.settings import Settings
from modstream.stack.servers import Layout, remove_abandoned_writes, s3


def test_a_killed_nanios_half_done_writes_are_removed_and_nothing_else(tmp_path: Path) -> None:
    records = tmp_path / "broker" / "topics" / "t" / "records"
    meta = tmp_path / "broker" / ".nanio-meta" / "topics" / "t"
    for folder in (records, meta):
        folder.mkdir(parents=True)
    kept = [records / "00000000000000000001.batch", meta / "watermark.json.json", tmp_path / "uploads" / "a.tmpl"]
    left = [records / ".tmp.75a9f2f05915418eb88c26e3421fe9a3", meta / "watermark.json.json.tmp"]
    (tmp_path / "uploads").mkdir()
    for path in kept + left:
        path.write_bytes(b"x")
    assert remove_abandoned_writes(tmp_path) == 2
    assert [p.exists() for p in kept + left] == [True, True, True, False, False]


def test_the_s3_servers_start_clears_its_own_data_folder(tmp_path: Path) -> None:
    server = s3(Settings(state_dir=tmp_path), Layout(tmp_path))
    left = Layout(tmp_path).data_dir("s3") / "uploads" / ".tmp.0f"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"x")
    assert server.clear_leftovers() == 1 and not left.exists()
