"""The retry rule: outages are waited out without limit; a call that fails while the server is up is poison."""

from collections.abc import Awaitable, Callable, Iterator

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from modstream.core.inference import InferenceUnavailable
from modstream.core.kafka import broker_unavailable
from modstream.core.retry import GaveUp, retrying


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def instant(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("modstream.core.retry.asyncio.sleep", instant)
    return slept


class Flaky:
    """Fails ``failures`` times, then answers; counts its calls."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise InferenceUnavailable("UNAVAILABLE: connection refused")
        return "scores"


def health(*answers: bool) -> Callable[[], Awaitable[bool]]:
    """A probe answering ``answers`` in turn, then the last one for ever."""
    replies: Iterator[bool] = iter(answers)
    last = answers[-1]

    async def still_up() -> bool:
        return next(replies, last)

    return still_up


async def test_an_outage_is_waited_out_however_long_it_lasts() -> None:
    call = Flaky(failures=50)
    assert await retrying(call, "triton", give_up_after=8, still_up=health(False)) == "scores"
    assert call.calls == 51


async def test_a_call_failing_while_the_server_is_up_gives_up() -> None:
    call = Flaky(failures=50)
    with pytest.raises(GaveUp, match="triton is up but failed this call 8 times: UNAVAILABLE"):
        await retrying(call, "triton", give_up_after=8, still_up=health(True))
    assert call.calls == 8


async def test_only_failures_in_a_row_while_up_count() -> None:
    # 7 failures while up, then the server goes away once: the count starts again, so an
    # outage that flaps is never taken for poison.
    call = Flaky(failures=14)
    answers = (True,) * 7 + (False,) + (True,) * 6
    assert await retrying(call, "object store", give_up_after=8, still_up=health(*answers)) == "scores"
    assert call.calls == 15


async def test_a_probe_that_raises_means_down() -> None:
    async def broken() -> bool:
        raise OSError("connection refused")

    call = Flaky(failures=20)
    assert await retrying(call, "object store", give_up_after=8, still_up=broken) == "scores"


async def test_without_a_probe_it_never_gives_up() -> None:
    call = Flaky(failures=30)
    assert await retrying(call, "redis") == "scores"


async def test_backoff_doubles_to_the_cap_with_jitter(no_waiting: list[float]) -> None:
    await retrying(Flaky(failures=9), "redis", cap=10.0)
    assert len(no_waiting) == 9
    for delay, nominal in zip(no_waiting, [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10, 10, 10], strict=True):
        assert nominal * 0.5 <= delay <= nominal


async def test_other_errors_are_not_retried() -> None:
    async def bad() -> str:
        raise ValueError("3 labels but 2 scores")

    with pytest.raises(ValueError, match="3 labels"):
        await retrying(bad, "triton")


def test_a_broker_away_is_told_from_a_record_refused() -> None:
    assert broker_unavailable(KafkaConnectionError("no broker"))
    assert broker_unavailable(KafkaTimeoutError())
    wrapped = ProducerSendError("Error while sending")
    wrapped.__cause__ = KafkaConnectionError("no broker")
    assert broker_unavailable(wrapped)
    assert not broker_unavailable(MessageSizeTooLargeError())
    refused = ProducerSendError("Error while sending")
    refused.__cause__ = MessageSizeTooLargeError()
    assert not broker_unavailable(refused)
    assert not broker_unavailable(ValueError("x"))
