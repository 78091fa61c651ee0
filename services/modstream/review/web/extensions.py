"""Extensions that other rooms add to the dashboard without the dashboard knowing them (like
``admin_pages``): the composer (``cli/``) hands them to ``create_app``, they fit by shape alone.

An extension starts and stops with the dashboard (in its lifespan, after the review service
starts and before it stops) and serves a router of its own, given the dashboard's JSON API
dependency: it answers 401 to anything but a valid bearer token (``modstream dashboard token
NAME``; a session cookie is refused there, as it would make the API forgeable cross-site) and
resolves to the caller, with ``.user`` and ``.role`` (``reviewer`` or ``admin``).
"""

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from fastapi import APIRouter

ApiUser = Callable[..., Awaitable[Any]]


class DashboardExtension(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def router(self, api_user: ApiUser) -> APIRouter: ...
