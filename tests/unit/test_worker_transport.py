from modstream.core.settings import Settings
from modstream.worker.app import create_app


async def test_stream_consumer_fetches_with_the_configured_wait() -> None:
    # faust-streaming alone would build it with 1500 ms; see modstream.worker.transport.
    app = create_app(Settings(consumer_fetch_max_wait_ms=77))
    consumer = app.consumer._thread._create_consumer(app.transport)  # type: ignore[attr-defined]
    try:
        assert consumer._fetch_max_wait_ms == 77
    finally:
        await consumer.stop()
