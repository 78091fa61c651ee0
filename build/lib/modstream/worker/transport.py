"""Faust's aiokafka transport with the one knob it hard-codes: how long a fetch may wait.

faust-streaming builds its consumer with ``fetch_max_wait_ms=1500``. A broker that
answers a waiting fetch as soon as records arrive makes that harmless; Tansu, the
local broker, waits the whole time out, which added up to 1.5 s to every decision at
low load (measured: 450 ms median per record at 1500 ms, 2 ms at 100 ms). The value
now comes from settings (``MODSTREAM_CONSUMER_FETCH_MAX_WAIT_MS``).
"""

from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver
from faust.types import TransportT


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        assert isinstance(self.app, App)
        # Read by aiokafka when the consumer starts, exactly as the constructor argument.
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(driver.Transport):
    Consumer = _Consumer


class App(faust.App):
    """A Faust app whose stream consumer fetches with ``fetch_max_wait_ms``."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
