"""Pages that other rooms add to the dashboard without the dashboard knowing them: the
composer (``cli/``) hands them to ``create_app``, and they fit by shape alone. An
``AdminPage`` is for admins; a ``ReaderPage`` for every signed-in user, with files to
download beside it."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


class AdminPage(Protocol):
    """A page at ``/admin/<path>``, for admins only, linked from the navigation as ``title``.

    ``template`` is looked up in the dashboard's own templates first, then in the page's
    ``templates`` folder, so it can extend ``base.html``. ``context`` gets the query string
    and returns what the template shows.
    """

    @property
    def path(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def templates(self) -> Path: ...

    @property
    def template(self) -> str: ...

    async def context(self, query: Mapping[str, str]) -> dict[str, Any]: ...


class ReaderPage(AdminPage, Protocol):
    """A page at ``/<path>`` for every signed-in user (reviewers and admins), linked from the
    navigation as ``title``, with files at ``/<path>/<name>``.

    ``templates``, ``template`` and ``context`` as an ``AdminPage``'s. ``file`` answers a
    file's name with its media type and text, or None (a 404).
    """

    async def file(self, name: str) -> tuple[str, str] | None: ...
