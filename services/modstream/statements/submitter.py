"""Statements to the DSA Transparency Database: ``POST /statements`` in batches of at most 100.

The database refuses a whole batch for one bad statement (422, ``errors.statement_<i>``)
or for one puid it holds already (422, ``errors.existing_puids``: the database's source,
``GroupedSubmissionsService`` and ``PuidNotUniqueMultipleException``). So a 422 is read,
the statements it names are taken out (a held puid is done: submission is idempotent by
puid; an invalid statement is refused with the database's reason) and the rest is sent
again. Anything else that is not a 201 (a network error, 429, 5xx) is retried with
backoff, and so is 401/403 (a token to fix), which the refusals metric and the lag show.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from modstream.core.dsa import BATCH_LIMIT
from modstream.core.events import StatementIssued

log = logging.getLogger("modstream.statements")
TIMEOUT_SECONDS = 30.0


class NotSent(Exception):
    """The batch was not taken and may be sent again (the database or the network, or our token)."""


@dataclass
class Sent:
    """What became of a batch: taken, held already (by puid), refused (puid -> the database's reason)."""

    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise NotSent(f"the token file {path} cannot be read: {exc.strerror}") from exc
    if not token:
        raise NotSent(f"the token file {path} is empty")
    return token


async def submit(client: httpx.AsyncClient, endpoint: str, token: str, statements: list[StatementIssued]) -> Sent:
    """Send ``statements`` (at most ``BATCH_LIMIT``) until each is taken, held or refused.
    Raises NotSent when the batch must be tried again later."""
    if len(statements) > BATCH_LIMIT:
        raise ValueError(f"{len(statements)} statements: the database takes at most {BATCH_LIMIT} a call")
    sent = Sent()
    pending: list[StatementIssued] = []
    for statement in statements:  # one puid twice in a call refuses the call: the first one goes
        if statement.puid in {p.puid for p in pending}:
            sent.duplicates.append(statement.puid)
        else:
            pending.append(statement)
    url = endpoint.rstrip("/") + "/statements"
    headers = {"authorization": f"Bearer {token}", "accept": "application/json"}
    while pending:
        try:
            answer = await client.post(
                url, json={"statements": [s.statement for s in pending]}, headers=headers, timeout=TIMEOUT_SECONDS
            )
        except httpx.HTTPError as exc:
            raise NotSent(f"{url}: {type(exc).__name__}: {exc}") from exc
        if answer.status_code == 201:
            sent.accepted += [s.puid for s in pending]
            return sent
        if answer.status_code != 422:
            raise NotSent(f"{url} answered {answer.status_code}: {answer.text[:300]}")
        pending = _without_named(pending, _errors(answer), sent)
    return sent


def _errors(answer: httpx.Response) -> dict[str, object]:
    try:
        errors = answer.json().get("errors")
    except ValueError as exc:
        raise NotSent(f"a 422 that is not JSON: {answer.text[:300]}") from exc
    if not isinstance(errors, dict):
        raise NotSent(f"a 422 without errors: {answer.text[:300]}")
    return errors


def _without_named(pending: list[StatementIssued], errors: dict[str, object], sent: Sent) -> list[StatementIssued]:
    """``pending`` less the statements a 422 named, each recorded in ``sent``."""
    held = errors.get("existing_puids")
    held = set(held) if isinstance(held, list) else set()
    invalid = {
        int(key.removeprefix("statement_")): problems
        for key, problems in errors.items()
        if key.startswith("statement_") and key.removeprefix("statement_").isdigit()
    }
    if not held and not invalid:
        # The call itself was refused (e.g. the batch's size): nothing in it can be told apart.
        raise NotSent(f"the database refused the call: {errors}")
    rest = []
    for index, statement in enumerate(pending):
        if index in invalid:
            sent.refused[statement.puid] = _reason(invalid[index])
        elif statement.puid in held:
            sent.duplicates.append(statement.puid)
        else:
            rest.append(statement)
    return rest


def _reason(problems: object) -> str:
    if isinstance(problems, dict):
        return "; ".join(f"{name}: {' '.join(map(str, said))}" for name, said in sorted(problems.items()))[:1000]
    return str(problems)[:1000]
