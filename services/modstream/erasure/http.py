"""Erasure over HTTP, for admins, behind the dashboard's API tokens.

``ErasureApi`` fits the dashboard's extension shape (``start``, ``stop``, ``router``) without
importing it; ``cli/dashboard.py`` hands it over. ``POST /api/erasures`` with ``{"event_ids":
[...]}`` or ``{"subject": "..."}`` erases and answers the receipt (201); 409 while an appeal on
one of the uploads is in progress (nothing removed), 422 for an id no upload can have.
``GET /api/erasures/{receipt_id}`` answers a stored receipt.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from modstream.core.events import NotAnId
from modstream.core.settings import Settings
from modstream.erasure.receipt import ErasureReceipt
from modstream.erasure.run import Erasure, ErasureRefused, ReceiptMissing


class ErasureAsked(BaseModel):
    event_ids: list[str] = Field(default_factory=list, max_length=1000)
    subject: str | None = None


class ErasureApi:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._erasure: Erasure | None = None

    async def start(self) -> None:
        self._erasure = Erasure(self.settings)

    async def stop(self) -> None:
        if self._erasure is not None:
            await self._erasure.close()

    def _running(self) -> Erasure:
        if self._erasure is None:
            raise HTTPException(503, "the erasure API has not started")
        return self._erasure

    def router(self, api_user: Callable[..., Awaitable[Any]]) -> APIRouter:
        api = APIRouter()
        Anyone = Annotated[Any, Depends(api_user)]

        async def admin_user(caller: Anyone) -> Any:
            if caller.role != "admin":
                raise HTTPException(403, "only admins erase uploads")
            return caller

        Admin = Annotated[Any, Depends(admin_user)]

        @api.post("/api/erasures", status_code=201)
        async def erase(asked: ErasureAsked, caller: Admin) -> ErasureReceipt:
            if not asked.event_ids and asked.subject is None:
                raise HTTPException(422, "name what to erase: event_ids, or subject")
            try:
                return await self._running().erase(
                    event_ids=asked.event_ids, subject=asked.subject, requested_by=caller.user
                )
            except NotAnId as exc:
                raise HTTPException(422, str(exc)) from exc
            except ErasureRefused as exc:
                raise HTTPException(409, str(exc)) from exc

        @api.get("/api/erasures/{receipt_id}")
        async def receipt(receipt_id: str, caller: Admin) -> ErasureReceipt:
            try:
                return await self._running().receipt(receipt_id)
            except ReceiptMissing as exc:
                raise HTTPException(404, str(exc)) from exc

        return api
