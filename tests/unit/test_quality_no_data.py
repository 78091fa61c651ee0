"""``modstream quality report`` over an archive with nothing in it: the same exit status in
text and in JSON (no data is a failure either way). The catalog is a fresh sqlite file: no
table exists, so nothing reaches the object store."""

from pathlib import Path

import pytest
from modstream.cli import app
from modstream.core.settings import get_settings
from typer.testing import CliRunner


@pytest.mark.parametrize("json", [False, True])
def test_no_data_fails_alike_in_text_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, json: bool) -> None:
    monkeypatch.setenv("MODSTREAM_STATE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(app, ["quality", "report", *(["--json"] if json else [])])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 1, done.output
    assert "no automatic decision in the archive" in done.output
    if json:
        assert '"decisions": 0' in done.output
