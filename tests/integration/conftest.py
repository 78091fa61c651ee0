"""Fixtures of the dashboard and review tests: a review service in a queue namespace of its
test's own, and dashboard users with their API tokens."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from modstream.core.settings import Settings
from modstream.review.service import ReviewService

from tests.dashboard_helpers import make_users


@pytest.fixture
async def service(stack_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[ReviewService]:
    service = ReviewService(stack_settings)
    # A queue namespace per test: the servers are shared by the whole session.
    service.queues._prefix = f"{request.module.__name__.rsplit('.', 1)[-1]}:{request.node.name}:"
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
def users(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The users file (reviewers rita and remy, admin ada) and each one's API token."""
    path = tmp_path / "users.toml"
    return path, make_users(path)
