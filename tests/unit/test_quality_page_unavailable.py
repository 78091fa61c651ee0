"""The Quality page when the archive cannot be read: a message on the page, not a 500."""

from pathlib import Path

from modstream.core.ports import free_port
from modstream.core.settings import Settings
from modstream.quality.page import QualityPage


async def test_an_unreachable_archive_is_a_message_and_is_tried_again(tmp_path: Path) -> None:
    nowhere = Settings(
        s3_endpoint=f"127.0.0.1:{free_port()}", redis_url=f"redis://127.0.0.1:{free_port()}/0", state_dir=tmp_path
    )
    page = QualityPage(nowhere)
    shown = await page.context({"days": "7"})
    assert shown["decisions"] == 0 and shown["agreement"].pairs == 0
    assert any("cannot be read now" in problem for problem in shown["problems"]), shown["problems"]
    assert not page._kept  # nothing kept: the next load reads again
