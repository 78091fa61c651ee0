"""A stand-in for the DSA Transparency Database's statement API, for tests: a real HTTP server
that applies the database's validation rules as its source states them
(digital-services-act/transparency-database@69e80a0: ``StatementStoreRequest::rules``,
``GroupedSubmissionsService::multi_rules``, the puid exceptions), written here apart from
modstream's own ``core/dsa.py`` so that the two check each other.

    python -m tests.dsa_server --port 8123 --token secret

``GET /_test/statements`` lists what was stored, and every statement a call with the right
token carried (``received``: taken, refused or held already); ``POST /_test/fail`` makes the
next N calls answer a status of one's choosing (outages, rate limits).
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

_LISTS = json.loads((Path(__file__).parent / "data" / "dsa_vocabulary.json").read_text())
VOCABULARY: dict[str, list[str]] = {k: v for k, v in _LISTS.items() if not k.startswith("_")}
RESTRICTIONS = ("decision_visibility", "decision_monetary", "decision_provision", "decision_account")
PUID = re.compile(r"^[a-zA-Z0-9-_]+$")
ARRAYS = ("decision_visibility", "content_type", "category_specification", "territorial_scope", "category_addition")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _date(value: Any, low: date, high: date) -> str | None:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return "does not match the format YYYY-MM-DD"
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return "does not match the format YYYY-MM-DD"
    if not low <= day <= high:
        return f"must be a date between {low} and {high}"
    return None


def problems(statement: Any) -> dict[str, list[str]]:
    """Field -> what is wrong with it, as the database's rules say (empty: valid)."""
    if not isinstance(statement, dict):
        return {"statement": ["must be an object"]}
    # The database's middleware trims strings and turns empty ones into null first.
    s: dict[str, Any] = {k: (v.strip() or None) if isinstance(v, str) else v for k, v in statement.items()}
    found: dict[str, list[str]] = {}

    def bad(name: str, message: str) -> None:
        found.setdefault(name, []).append(message)

    for name in ("decision_ground", "content_type", "category", "content_date", "application_date"):
        if _blank(s.get(name)):
            bad(name, f"The {name.replace('_', ' ')} field is required.")
    for name in ("decision_facts", "source_type", "automated_detection", "automated_decision", "puid"):
        if _blank(s.get(name)):
            bad(name, f"The {name.replace('_', ' ')} field is required.")
    if all(_blank(s.get(name)) for name in RESTRICTIONS):
        for name in RESTRICTIONS:
            bad(name, f"The {name.replace('_', ' ')} field is required when none of the others are present.")
    for name in ARRAYS:
        if name in s and s[name] is not None and not isinstance(s[name], list):
            bad(name, f"The {name.replace('_', ' ')} field must be an array.")
    for name, allowed in VOCABULARY.items():
        value = s.get(name)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if name in ARRAYS and not isinstance(value, list):
            continue
        if any(not isinstance(v, str) or v not in allowed for v in values):
            bad(name, f"The selected {name.replace('_', ' ')} is invalid.")
    if s.get("category_addition") is not None and any(v not in VOCABULARY["category"] for v in s["category_addition"]):
        bad("category_addition", "The selected category addition is invalid.")
    for name in ("automated_detection", "incompatible_content_illegal"):
        if s.get(name) is not None and s[name] not in ("Yes", "No"):
            bad(name, f"The selected {name.replace('_', ' ')} is invalid.")
    ground = s.get("decision_ground")
    for wanted, fields in (
        ("DECISION_GROUND_ILLEGAL_CONTENT", ("illegal_content_legal_ground", "illegal_content_explanation")),
        ("DECISION_GROUND_INCOMPATIBLE_CONTENT", ("incompatible_content_ground", "incompatible_content_explanation")),
    ):
        for name in fields:
            if ground == wanted and _blank(s.get(name)):
                bad(name, f"The {name.replace('_', ' ')} field is required when decision ground is {wanted}.")
    limits = {
        "decision_facts": 5000,
        "puid": 500,
        "illegal_content_legal_ground": 500,
        "illegal_content_explanation": 2000,
        "incompatible_content_ground": 500,
        "incompatible_content_explanation": 2000,
        "decision_visibility_other": 500,
        "content_type_other": 500,
        "category_specification_other": 500,
        "source_identity": 500,
    }
    for name, limit in limits.items():
        if isinstance(s.get(name), str) and len(s[name]) > limit:
            bad(name, f"The {name.replace('_', ' ')} field must not be greater than {limit} characters.")
    if isinstance(s.get("puid"), str) and not PUID.fullmatch(s["puid"]):
        bad("puid", "The puid format is invalid.")
    visibility = s.get("decision_visibility") or []
    if "DECISION_VISIBILITY_OTHER" in visibility and _blank(s.get("decision_visibility_other")):
        bad("decision_visibility_other", "The decision visibility other field is required.")
    if "CONTENT_TYPE_OTHER" in (s.get("content_type") or []) and _blank(s.get("content_type_other")):
        bad("content_type_other", "The content type other field is required.")
    if s.get("content_date") is not None and (why := _date(s["content_date"], date(2000, 1, 1), date(2038, 1, 1))):
        bad("content_date", f"The content date {why}.")
    if s.get("application_date") is not None and (
        why := _date(s["application_date"], date(2020, 1, 1), date(2038, 1, 1))
    ):
        bad("application_date", f"The application date {why}.")
    for name in ("end_date_account_restriction", "end_date_monetary_restriction", "end_date_service_restriction",
                 "end_date_visibility_restriction"):  # fmt: skip
        if s.get(name) is not None and (why := _date(s[name], date(1, 1, 1), date(2038, 1, 1))):
            bad(name, f"The {name.replace('_', ' ')} {why}.")
    return found


class Database:
    def __init__(self, token: str) -> None:
        self.token = token
        self.stored: dict[str, dict[str, Any]] = {}
        self.received: list[Any] = []  # every statement a call carried past the token check
        self.failures: list[int] = []
        self.calls = 0

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/statement", self.one, methods=["POST"]),
                Route("/api/v1/statements", self.many, methods=["POST"]),
                Route("/api/v1/statement/existing-puid/{puid}", self.existing, methods=["GET"]),
                Route("/_test/statements", self.listed, methods=["GET"]),
                Route("/_test/fail", self.fail, methods=["POST"]),
            ]
        )

    def _refusal(self, request: Request) -> Response | None:
        self.calls += 1
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"message": "Unauthenticated."}, status_code=401)
        if self.failures:
            status = self.failures.pop(0)
            if status == 429:
                return PlainTextResponse("Limit Reached. Please do not overload the API", status_code=429)
            return JSONResponse({"message": "Server Error"}, status_code=status)
        return None

    async def one(self, request: Request) -> Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        body = await request.json()
        self.received.append(body)
        if found := problems(body):
            first = next(iter(found.values()))[0]
            more = sum(map(len, found.values())) - 1
            message = first + (f" (and {more} more errors)" if more else "")
            return JSONResponse({"message": message, "errors": found}, status_code=422)
        if body["puid"] in self.stored:
            said = "The identifier given is not unique within this platform."
            return JSONResponse(
                {"message": said, "errors": {"puid": [said]}, "existing": {"puid": body["puid"]}}, status_code=422
            )
        self.stored[body["puid"]] = body
        return JSONResponse(body | {"id": 100000000000 + len(self.stored), "uuid": body["puid"]}, status_code=201)

    async def many(self, request: Request) -> Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        body = await request.json()
        statements = body.get("statements") if isinstance(body, dict) else None
        self.received += statements if isinstance(statements, list) else []
        if not isinstance(statements, list) or not 1 <= len(statements) <= 100:
            said = "The statements field must have between 1 and 100 items."
            return JSONResponse({"message": said, "errors": {"statements": [said]}}, status_code=422)
        invalid = {f"statement_{i}": found for i, s in enumerate(statements) if (found := problems(s))}
        if invalid:
            return JSONResponse({"errors": invalid}, status_code=422)
        puids = [s["puid"] for s in statements]
        held = sorted({p for p in puids if p in self.stored or puids.count(p) > 1})
        if held:
            said = "The platform identifier(s) are not all unique within this call."
            return JSONResponse({"message": said, "errors": {"puid": [said], "existing_puids": held}}, status_code=422)
        for statement in statements:
            self.stored[statement["puid"]] = statement
        return JSONResponse({"statements": [s | {"uuid": s["puid"]} for s in statements]}, status_code=201)

    async def existing(self, request: Request) -> Response:
        if (refused := self._refusal(request)) is not None:
            return refused
        puid = request.path_params["puid"]
        if puid in self.stored:
            return JSONResponse({"message": "statement of reason found", "puid": puid}, status_code=302)
        return JSONResponse({"message": "statement of reason not found", "puid": puid}, status_code=404)

    async def listed(self, request: Request) -> Response:
        return JSONResponse({"statements": list(self.stored.values()), "received": self.received, "calls": self.calls})

    async def fail(self, request: Request) -> Response:
        asked = await request.json()
        self.failures += [int(asked["status"])] * int(asked.get("times", 1))
        return JSONResponse({"failing": len(self.failures)})


@dataclass(frozen=True)
class RunningDatabase:
    endpoint: str  # the API's base: .../api/v1
    token: str
    pid: int

    def stored(self) -> list[dict[str, Any]]:
        return list(httpx.get(self.endpoint.removesuffix("/api/v1") + "/_test/statements").json()["statements"])

    def received(self) -> list[Any]:
        """Every statement sent with the right token, in order, whatever the answer was."""
        return list(httpx.get(self.endpoint.removesuffix("/api/v1") + "/_test/statements").json()["received"])

    def fail_next(self, status: int, times: int = 1) -> None:
        httpx.post(self.endpoint.removesuffix("/api/v1") + "/_test/fail", json={"status": status, "times": times})


@contextmanager
def running_database(token: str = "test-token") -> Iterator[RunningDatabase]:
    """The stand-in database as its own process on a free loopback port, stopped by PID."""
    from modstream.core.ports import free_port

    port = free_port()
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.dsa_server", "--port", str(port), "--token", token],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/_test/statements", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the stand-in DSA database did not start") from None
                time.sleep(0.1)
        yield RunningDatabase(base + "/api/v1", token, server.pid)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    uvicorn.run(Database(args.token).app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
