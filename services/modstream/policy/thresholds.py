"""Per-label thresholds and the decision rule.

Rule: ``block`` if any label reaches its ``block_at``; else ``review`` if any reaches
its ``review_at``; else ``allow``. Reaching means score >= threshold.
"""

import tomllib
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modstream.core.events import Outcome, Trigger


class PolicyError(ValueError):
    """A thresholds file that cannot be used, with the file and field named."""


class LabelThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    review_at: float = Field(ge=0.0, le=1.0)
    block_at: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.review_at > self.block_at:
            raise ValueError(f"review_at ({self.review_at}) is above block_at ({self.block_at})")
        return self


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    labels: dict[str, LabelThresholds]

    @classmethod
    def load(cls, path: Path) -> "Thresholds":
        try:
            return cls.model_validate(tomllib.loads(path.read_text()))
        except FileNotFoundError as exc:
            raise PolicyError(f"{path}: no such thresholds file") from exc
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path}: not valid TOML: {exc}") from exc
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
            raise PolicyError(f"{path}: {problems}") from exc

    def unknown_labels(self, model_labels: list[str]) -> list[str]:
        """Labels this file names that the model does not score."""
        return sorted(set(self.labels) - set(model_labels))


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision: Outcome
    triggered: list[Trigger]
    reasons: list[str]


def decide(scores: dict[str, float], thresholds: Thresholds) -> Verdict:
    triggered: list[Trigger] = []
    for label, limits in thresholds.labels.items():
        score = scores.get(label)
        if score is None:
            continue
        if score >= limits.block_at:
            triggered.append(Trigger(label=label, score=score, threshold=limits.block_at, level="block"))
        elif score >= limits.review_at:
            triggered.append(Trigger(label=label, score=score, threshold=limits.review_at, level="review"))
    if any(t.level == "block" for t in triggered):
        decision = Outcome.BLOCK
        triggered = [t for t in triggered if t.level == "block"]
    elif triggered:
        decision = Outcome.REVIEW
    else:
        decision = Outcome.ALLOW
    triggered.sort(key=lambda t: t.score, reverse=True)
    return Verdict(decision=decision, triggered=triggered, reasons=["threshold"] if triggered else [])
