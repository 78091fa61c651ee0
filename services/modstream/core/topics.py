"""The topics, their names and partition counts from settings; created when missing."""

from contextlib import suppress

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from modstream.core.kafka import connection_options
from modstream.core.settings import Settings


def topic_names(settings: Settings) -> list[str]:
    return [
        settings.topic_uploads,
        settings.topic_decisions,
        settings.topic_review_requests,
        settings.topic_dead_letter,
        settings.topic_review_verdicts,
        settings.topic_shadow,
        settings.topic_s3_notifications,
        settings.topic_banks,
        settings.topic_statements,
        settings.topic_appeals,
        settings.topic_appeal_outcomes,
    ]


def new_topic(settings: Settings, name: str) -> NewTopic:
    if name == settings.topic_banks:
        # One partition: a bank's creation is read before its entries, a removal after its add.
        return NewTopic(name, 1, settings.topic_replication, topic_configs={"cleanup.policy": "compact"})
    return NewTopic(name, settings.topic_partitions, settings.topic_replication)


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(**connection_options(settings), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topic_names(settings) if name not in existing]
        if missing:
            # Another process may win the race; the topic is there either way.
            with suppress(TopicAlreadyExistsError):
                await admin.create_topics([new_topic(settings, n) for n in missing])
        return missing
    finally:
        await admin.close()
