"""The dashboard's pages as HTML: its templates (and those of the admin pages other rooms add),
each given the signed-in session and the notice the query string names."""

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from modstream.review.web.admin_pages import AdminPage, ReaderPage
from modstream.review.web.sessions import Session

NOTICES = {
    "empty": "That queue is empty.",
    "done": "Verdict saved. The queue is empty now.",
    "lost": "Your lease on that job ran out; it went back to its queue.",
    "saved": "Settings saved.",
    "bye": "You are logged out.",
    "revoked": "Session ended.",
    "gone": "That session had already ended.",
    "defined": "Label defined: every job offers it now.",
    "break": "Time for a break: you have seen a run of severe images. Jobs come again when it ends.",
    "overridden": "Limits lifted for that reviewer for the rest of the day (audited).",
    "gold": "Marked as gold: it will be shown now and then in its queue, and the verdicts on it judged.",
}


class Pages:
    """Templates looked up in ``folder`` first, then in each added page's own folder (so they
    can extend ``base.html``, whose navigation links every added page)."""

    def __init__(
        self, folder: Path, admin_pages: Sequence[AdminPage] = (), reader_pages: Sequence[ReaderPage] = ()
    ) -> None:
        added = [*admin_pages, *reader_pages]
        self.templates = Jinja2Templates(directory=[folder, *dict.fromkeys(page.templates for page in added)])
        self.templates.env.globals["admin_pages"] = tuple(admin_pages)
        self.templates.env.globals["reader_pages"] = tuple(reader_pages)
        self.templates.env.filters["duration"] = duration
        self.templates.env.filters["seconds_span"] = lambda seconds: duration(timedelta(seconds=seconds))

    def render(
        self, request: Request, template: str, session: Session | None, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        notice = NOTICES.get(request.query_params.get("notice", ""))
        return self.templates.TemplateResponse(
            request, template, {"session": session, "notice": notice, **context}, status_code=status_code
        )


def duration(span: timedelta) -> str:
    """``span`` (its size, whichever its sign) in the two largest units a reader needs: "2 d 3 h",
    "5 h 20 min", "7 min", "under a minute"."""
    minutes = int(abs(span.total_seconds()) // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min" if mins else "under a minute"
