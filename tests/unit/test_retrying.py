"""The retry rule: outages are waited out without limit; a call that fails while the server is up is poison."""

from collections.abc import Awaitable, Callable

import pytest
from modstream.core.inference import InferenceUnavailable
from modstream.worker.pipeline import GaveUp, retrying


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    async def instant(seconds: float) -> None:
        return None

    monkeypatch.setattr("modstream.worker.pipeline.asyncio.sleep", instant)


class Flaky:
    """Fails ``failures`` times, then answers; counts its calls."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise InferenceUnavailable("UNAVAILABLE: connection refused")
        return "scores"


def health(answers: bool) -> Callable[[], Awaitable[bool]]:
    async def still_up() -> bool:
        return answers

    return still_up


async def test_an_outage_is_waited_out_however_long_it_lasts() -> None:
    call = Flaky(failures=50)
    assert await retrying(call, "triton", give_up_after=8, still_up=health(False)) == "scores"
    assert call.calls == 51


async def test_a_call_failing_while_the_server_is_up_gives_up() -> None:
    call = Flaky(failures=50)
    with pytest.raises(GaveUp, match="triton is up but failed this 8 times: UNAVAILABLE"):
        await retrying(call, "triton", give_up_after=8, still_up=health(True))
    assert call.calls == 8


async def test_without_a_limit_it_never_gives_up() -> None:
    call = Flaky(failures=30)
    assert await retrying(call, "redis") == "scores"
