"""Hash banks over HTTP, on the paths and in the JSON shapes of HMA 2.0 (Meta's
Hasher-Matcher-Actioner, ``hasher-matcher-actioner/src/OpenMediaMatch/blueprints``): ``/h``
hashes, ``/m`` matches, ``/c`` curates. A client written for HMA points at the dashboard.

``BankApi`` owns a live view of the banks (a ``BankFollower`` on the banks topic) and a Triton
client for hashing. It builds a FastAPI router around the caller's auth dependency, so this
room imports nothing of the dashboard that serves it: the composer (``cli/``) hands it over.
Reading (hash, look up, list) is for every signed-in caller; adding and removing content is
for admins, and goes through ``ops`` (checked) and ``topic.publish`` like the CLI's changes.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from starlette.datastructures import UploadFile

from modstream.bank import ops, signals, topic
from modstream.bank.formats import ENTRY_ID, hma_content, signal
from modstream.bank.signals import Query
from modstream.bank.state import Banks, Match
from modstream.core.events import Bank, BankEntry, ImageHashes
from modstream.core.inference import ImageRejected, InferenceUnavailable, TritonScorer
from modstream.core.settings import Settings

log = logging.getLogger("modstream.bank.http")
DEFAULT_TENANT = "default"  # as `modstream bank match`: banks for every tenant, and those for "default"
APPLIED_WAIT_SECONDS = 5.0  # a write answers once this dashboard's own view has it (read-your-writes)
APPLIED_POLL_SECONDS = 0.02
NOTE_LIMIT = 255  # HMA's


class Caller(Protocol):
    """Who is asking, as the dashboard's API dependency resolves it."""

    @property
    def user(self) -> str: ...

    @property
    def role(self) -> str: ...


class BankApi:
    """Banks for the dashboard: ``start``/``stop`` with it, ``names`` and ``value`` for its
    review page, ``router`` for its HMA-shaped API."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.banks = Banks()
        self._follower: topic.BankFollower | None = None
        self._task: asyncio.Task[None] | None = None
        self._scorer: TritonScorer | None = None

    def names(self) -> list[str]:
        return sorted(self.banks.banks)

    def value(self, kind: str, given: str) -> str:
        """``given`` as banks keep a value of signal type ``kind`` (a reviewer's phrase), or
        ``ValueError`` saying why banks refuse it."""
        return signals.get(kind).validate(given)

    async def start(self) -> None:
        # Made here, not in __init__: the Kafka and Triton clients bind to the running loop.
        self._follower = topic.BankFollower(self.settings, self.banks)
        await self._follower.load()
        self._task = asyncio.create_task(self._follow(self._follower), name="bank-follower")
        s = self.settings
        self._scorer = TritonScorer(s.triton_grpc, s.triton_model, s.inference_timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        if self._follower is not None:
            await self._follower.close()
        if self._scorer is not None:
            await self._scorer.close()

    async def _follow(self, follower: topic.BankFollower) -> None:
        while True:
            try:
                await follower.follow()
            except Exception:
                log.exception("following the banks topic failed; again in 1 s")
                await asyncio.sleep(1)

    # --- what the routes do --------------------------------------------------------------

    async def hash_upload(self, request: Request) -> ImageHashes:
        """The one uploaded file's hashes, PDQ by Triton's preprocess as the pipeline hashes it."""
        form = await request.form(max_files=1)
        files = [value for value in form.values() if isinstance(value, UploadFile)]
        if len(files) != 1:
            raise HTTPException(422, "send one image file as multipart/form-data (HMA's field name: photo)")
        data = await files[0].read(self.settings.max_image_bytes + 1)
        if len(data) > self.settings.max_image_bytes:
            raise HTTPException(413, f"the image is over {self.settings.max_image_bytes} bytes")
        if self._scorer is None:
            raise HTTPException(503, "the bank API has not started")
        try:
            pdq = await self._scorer.pdq(data)
        except ImageRejected as exc:
            raise HTTPException(422, f"not an image modstream can hash: {exc.reason.value}: {exc.message}") from exc
        except InferenceUnavailable as exc:
            raise HTTPException(503, f"Triton cannot hash right now: {exc}") from exc
        return signals.hash_image(data).model_copy(update={"pdq": pdq})

    def lookup(self, queries: dict[str, Query], tenant: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Per signal type, every match for an upload of ``tenant`` in HMA's shape:
        ``{bank: [{"bank_content_id", "distance", …}]}``, the deciding match first (empty
        when nothing matches)."""
        found: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for kind, query in queries.items():
            by_bank: dict[str, list[dict[str, Any]]] = {}
            for match in self.banks.matches(tenant, **{kind: query}):
                by_bank.setdefault(match.bank.name, []).append(_match_payload(match))
            found[kind] = by_bank
        return found

    async def publish(self, changes: list[topic.Change]) -> None:
        await topic.publish(self.settings, changes)
        # Answer once this process's own view has the changes, so that a client's next
        # request (a lookup) sees what it just wrote.
        for _ in range(round(APPLIED_WAIT_SECONDS / APPLIED_POLL_SECONDS)):
            if all(self._applied(change) for change in changes):
                return
            await asyncio.sleep(APPLIED_POLL_SECONDS)
        log.warning("bank change published but not seen back yet", extra={"changes": len(changes)})

    def _applied(self, change: topic.Change) -> bool:
        key, value = change
        _, bank, entry_id = key.split("/", 2)
        return ((bank, entry_id) in self.banks.entries) == (value is not None)

    def bank(self, name: str) -> Bank:
        found = self.banks.banks.get(name)
        if found is None:
            raise HTTPException(404, f"bank '{name}' not found")
        return found

    # --- the routes ------------------------------------------------------------------------

    def router(self, api_user: Callable[..., Awaitable[Any]]) -> APIRouter:
        """HMA's routes, behind ``api_user`` (the dashboard's bearer-token dependency)."""
        api = APIRouter()
        Anyone = Annotated[Any, Depends(api_user)]

        async def admin_user(caller: Anyone) -> Caller:
            if caller.role != "admin":
                raise HTTPException(403, "only admins add to and remove from banks")
            return caller  # type: ignore[no-any-return]

        Admin = Annotated[Caller, Depends(admin_user)]

        @api.post("/h/hash")
        async def hash_media(request: Request, response: Response, caller: Anyone) -> dict[str, str]:
            """HMA's hashing of an uploaded file: signal type -> hash. HMA answers only the
            types its photo content has (pdq); here also the exact hashes, and the PDQ
            quality in a header (HMA drops a PDQ hash under quality 50)."""
            hashes = await self.hash_upload(request)
            assert hashes.pdq is not None
            response.headers["X-PDQ-Quality"] = str(hashes.pdq.quality)
            return {kind: query.value for kind, query in signals.queries(hashes).items()}

        @api.get("/h/hash")
        async def hash_url(caller: Anyone) -> None:
            raise HTTPException(422, "modstream does not fetch URLs: upload the file (POST /h/hash)")

        @api.get("/m/lookup")
        async def lookup_get(
            caller: Anyone, signal_type: str = "", signal: str = "", url: str = "", tenant: str = DEFAULT_TENANT
        ) -> dict[str, list[dict[str, Any]]]:
            """One hash: ``{bank: [{"bank_content_id", "distance"}]}``, as HMA with ``signal_type``."""
            if url:
                raise HTTPException(422, "modstream does not fetch URLs: upload the file (POST /m/lookup)")
            query = _query(signal_type, signal)
            return next(iter(self.lookup(query, tenant).values()))

        @api.post("/m/lookup")
        async def lookup_post(
            request: Request, caller: Anyone, tenant: str = DEFAULT_TENANT
        ) -> dict[str, dict[str, list[dict[str, Any]]]]:
            """An uploaded file, hashed as the pipeline hashes it: per signal type, as GET."""
            return self.lookup(signals.queries(await self.hash_upload(request)), tenant)

        @api.get("/m/raw_lookup")
        async def raw_lookup(
            caller: Anyone,
            signal_type: str = "",
            signal: str = "",
            include_distance: bool = False,
            tenant: str = DEFAULT_TENANT,
        ) -> dict[str, list[Any]]:
            """HMA's bare answer: the matching content ids (with ``include_distance``, each
            with its distance)."""
            (by_bank,) = self.lookup(_query(signal_type, signal), tenant).values()
            matched = [m for ms in by_bank.values() for m in ms]
            if include_distance:
                return {"matches": [{k: m[k] for k in ("bank_content_id", "distance")} for m in matched]}
            return {"matches": [m["bank_content_id"] for m in matched]}

        @api.get("/c/banks")
        async def banks_index(caller: Anyone) -> list[dict[str, Any]]:
            return [self._bank_payload(self.banks.banks[name]) for name in self.names()]

        @api.get("/c/bank/{bank_name}")
        async def bank_show(bank_name: str, caller: Anyone) -> dict[str, Any]:
            return self._bank_payload(self.bank(bank_name))

        @api.get("/c/bank/{bank_name}/content/{content_id}")
        async def bank_get_content(
            bank_name: str,
            content_id: str,
            caller: Anyone,
            include_signals: bool = False,
            include_metadata: bool = True,
        ) -> dict[str, Any]:
            bank = self.bank(bank_name)
            entry = self.banks.entries.get((bank_name, content_id))
            if entry is None:
                raise HTTPException(404, f"content '{content_id}' not found")
            content = hma_content(bank, entry)
            if not include_signals:
                del content["signals"]
            if not include_metadata:
                del content["metadata"]
            return content

        @api.post("/c/bank/{bank_name}/content")
        async def bank_add_content(bank_name: str, request: Request, caller: Admin) -> dict[str, Any]:
            """Add an uploaded image (multipart; optional form fields ``note`` and
            ``metadata``, a JSON object whose ``content_id`` is kept as the upload's id)."""
            self.bank(bank_name)
            if request.query_params.get("url"):
                raise HTTPException(422, "modstream does not fetch URLs: upload the file as multipart/form-data")
            form = await request.form(max_files=1)
            note = _note(form.get("note"))
            content_id = _content_id(form.get("metadata"))
            hashes = await self.hash_upload(request)
            fields = ops.signals(hashes) | {"source_event_id": content_id, "note": note}
            return await self._add(bank_name, fields, caller)

        @api.post("/c/bank/{bank_name}/signal")
        async def bank_add_as_signals(bank_name: str, request: Request, caller: Admin) -> dict[str, Any]:
            """Add hashes without the image: ``{"pdq": "<hash>", "note": "…"}`` as HMA takes it."""
            self.bank(bank_name)
            try:
                body = await request.json()
            except json.JSONDecodeError as exc:
                raise HTTPException(422, "send a JSON object of signal type to hash") from exc
            if not isinstance(body, dict):
                raise HTTPException(422, "send a JSON object of signal type to hash")
            note = _note(body.pop("note", None))
            if not body:
                raise HTTPException(422, "no signals given")
            given = dict(_signal(type_name, value) for type_name, value in body.items())
            return await self._add(bank_name, signals.record_fields(given) | {"note": note}, caller)

        @api.delete("/c/bank/{bank_name}/content/{content_id}")
        async def bank_delete_content(bank_name: str, content_id: str, caller: Admin) -> dict[str, int]:
            """HMA's answer: how many were deleted (0 when there was no such content)."""
            self.bank(bank_name)
            if (bank_name, content_id) not in self.banks.entries:
                return {"deleted": 0}
            try:
                changes = ops.remove(self.banks, bank_name, [content_id])
            except ops.BankError as exc:
                raise HTTPException(422, str(exc)) from exc
            await self.publish(changes)
            log.info("bank content removed", extra={"bank": bank_name, "entry": content_id, "by": caller.user})
            return {"deleted": 1}

        return api

    async def _add(self, bank: str, fields: dict[str, object], caller: Caller) -> dict[str, Any]:
        try:
            changes = ops.add(self.banks, bank, [fields], added_by=caller.user)
        except ops.BankError as exc:
            raise HTTPException(422, str(exc)) from exc
        await self.publish(changes)
        ((_, record),) = changes
        assert record is not None
        entry = BankEntry.model_validate_json(record)
        log.info("bank content added", extra={"bank": bank, "entry": entry.entry_id, "by": caller.user})
        return {"id": entry.entry_id, "signals": signals.entry_values(entry)}

    def _bank_payload(self, bank: Bank) -> dict[str, Any]:
        """HMA's bank (name, matching_enabled_ratio), then what a modstream bank has besides."""
        return {
            "name": bank.name,
            "matching_enabled_ratio": 1.0 if bank.enabled else 0.0,
            **bank.model_dump(mode="json", include={"action", "review_queue", "distance", "min_quality", "tenants"}),
            "description": bank.description,
            "entries": len(self.banks.ids_of(bank.name)),
        }


def _match_payload(match: Match) -> dict[str, Any]:
    # HMA gives the distance as its SignalSimilarityInfo.pretty_str(): a string.
    return {
        "bank_content_id": match.entry_id,
        "distance": str(match.distance),
        "signal_type": match.signal,
        "action": match.bank.action.value,
    }


def _signal(type_name: object, value: object) -> tuple[str, str]:
    """A signal from a request, as (type, hex): 422 with the reason when it is not one."""
    if not isinstance(type_name, str) or not isinstance(value, str) or not type_name or not value:
        raise HTTPException(422, f"give signal_type ({', '.join(signals.names())}) and signal (the hash)")
    try:
        return signal(type_name, value)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


def _query(type_name: str, value: str) -> dict[str, Query]:
    """A hash to look up; one given by hand has no known quality (PDQ's): taken as vouched for."""
    kind, valid = _signal(type_name, value)
    return {kind: Query(valid)}


def _note(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > NOTE_LIMIT:
        raise HTTPException(422, f"note must be a string of at most {NOTE_LIMIT} characters")
    return value


def _content_id(metadata: object) -> str | None:
    """HMA's ``metadata`` form field: its ``content_id`` names the content's upload."""
    if metadata is None or metadata == "":
        return None
    try:
        parsed = json.loads(metadata) if isinstance(metadata, str) else None
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise HTTPException(422, "metadata must be a JSON object")
    unknown = sorted(set(parsed) - {"content_id", "collab"})
    if unknown:
        raise HTTPException(422, f"metadata {', '.join(unknown)} is not kept by modstream (only content_id)")
    content_id = parsed.get("content_id")
    if content_id is not None and (not isinstance(content_id, str) or not ENTRY_ID.match(content_id)):
        raise HTTPException(422, "metadata.content_id must be an id (letters, digits, _.:-)")
    return content_id
