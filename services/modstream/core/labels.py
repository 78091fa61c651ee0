"""Review labels that a team defines, beyond the taxonomy's: what no model knows yet.

A defined label is offered to reviewers on every job at once, and verdicts naming it are
published like any other. The registry keeps when each label was defined: verdicts from
before that moment say nothing about it (training from them must not count them as "no").

Redis keeps one hash (key ``labels:defined``): label name -> its ``LabelDefinition`` as JSON.
Whether a name clashes with the taxonomy is for the caller to say (``label_definition``'s
``taxonomy``): the taxonomy lives above the core.
"""

import re
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Annotated

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

# Dotted namespaces of lowercase words, like the taxonomy's: emblem.red, scam.layout.
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$")
NAME_MAX = 64


class LabelError(ValueError):
    """A label that cannot be defined (bad name or description, taken, a taxonomy label); the
    message says why, naming the label."""


class LabelDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    defined_by: str = Field(min_length=1)
    defined_at: datetime = Field(description="UTC; verdicts from before it say nothing about the label")

    @field_validator("name")
    @classmethod
    def _dotted_lowercase(cls, name: str) -> str:
        if len(name) > NAME_MAX or not NAME.match(name):
            raise ValueError(
                "the name must be a dotted lowercase name like emblem.red "
                f"(a-z, 0-9, '_' and '-' between the dots, at most {NAME_MAX} characters)"
            )
        return name

    @field_validator("defined_at")
    @classmethod
    def _utc(cls, at: datetime) -> datetime:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("defined_at must carry its time zone (UTC)")
        return at.astimezone(UTC)


def label_definition(
    name: str, description: str, defined_by: str, *, taxonomy: Collection[str] = (), at: datetime | None = None
) -> LabelDefinition:
    """A new label's definition (defined now, unless ``at``); LabelError when the name or the
    description will not do, or the name is one of ``taxonomy``'s labels."""
    try:
        definition = LabelDefinition(
            name=name, description=description, defined_by=defined_by, defined_at=at or datetime.now(UTC)
        )
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        raise LabelError(f"label {name!r}: {problems}") from exc
    if definition.name in taxonomy:
        raise LabelError(f"label {name!r} is one of the taxonomy's labels (the models score it): pick another name")
    return definition


def _problem(where: tuple[int | str, ...], message: str) -> str:
    message = message.removeprefix("Value error, ")
    return message if where == ("name",) else f"{'.'.join(map(str, where))}: {message}"


class LabelRegistry:
    def __init__(self, client: "aioredis.Redis", prefix: str = "labels:") -> None:
        self._redis = client
        self._key = f"{prefix}defined"

    async def define(self, definition: LabelDefinition) -> None:
        """Add the label; LabelError if a label of that name is defined already (its first
        definition stands)."""
        added = await self._redis.hsetnx(self._key, definition.name, definition.model_dump_json())  # type: ignore[misc]
        if not added:
            first = await self.get(definition.name)
            since = f" (by {first.defined_by} at {first.defined_at:%Y-%m-%d %H:%M} UTC)" if first else ""
            raise LabelError(f"label {definition.name!r} is already defined{since}")

    async def all(self) -> list[LabelDefinition]:
        """Every defined label, by name."""
        found = await self._redis.hvals(self._key)  # type: ignore[misc]
        return sorted((LabelDefinition.model_validate_json(value) for value in found), key=lambda d: d.name)

    async def get(self, name: str) -> LabelDefinition | None:
        found = await self._redis.hget(self._key, name)  # type: ignore[misc]
        return None if found is None else LabelDefinition.model_validate_json(found)

    async def remove(self, name: str) -> bool:
        """Stop offering the label (verdicts that named it keep it); False if it was not defined."""
        return bool(await self._redis.hdel(self._key, name))  # type: ignore[misc]
