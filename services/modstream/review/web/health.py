"""The review feeds' health, for monitors."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

router = APIRouter()


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """Each review feed's state (503 while one is not working), for monitors: no session
    needed, as it names error types only, never an address or a message."""
    from modstream.review.intake import health_report

    healthy, report = health_report()
    return JSONResponse(report, status_code=200 if healthy else 503)  # no-store: the middleware
