"""The pages other rooms add for every signed-in user (``admin_pages.ReaderPage``): the page
takes a session (none: to the login page), its files a session or an API bearer token (none:
401), so a script can fetch them too."""

from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter, HTTPException, Request, Response

from modstream.review.web.access import Anyone, Page
from modstream.review.web.admin_pages import ReaderPage
from modstream.review.web.shared import Shared


def reader_pages(pages: Sequence[ReaderPage]) -> APIRouter:
    """Each of ``pages`` at ``/<path>``, its files at ``/<path>/<name>``."""
    added = APIRouter()
    for page in pages:
        added.add_api_route(f"/{page.path}", _serve(page), methods=["GET"])
        added.add_api_route(f"/{page.path}/{{name}}", _serve_file(page), methods=["GET"])
    return added


def _serve(page: ReaderPage) -> Callable[..., Awaitable[Response]]:
    async def reader_page(request: Request, session: Page, dashboard: Shared) -> Response:
        return dashboard.pages.render(request, page.template, session, **await page.context(request.query_params))

    return reader_page


def _serve_file(page: ReaderPage) -> Callable[..., Awaitable[Response]]:
    async def reader_file(name: str, session: Anyone) -> Response:
        found = await page.file(name)
        if found is None:
            raise HTTPException(404, "no such file")
        media_type, text = found
        # The name is one the page made (it answered for it), so it is safe in the header.
        return Response(text, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return reader_file
