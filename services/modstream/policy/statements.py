"""A tenant's ``statements`` section: how its restrictions are reported as statements of reasons.

Each label the policy can block on (every label under ``labels``: a score reaching its
``block_at``, or a reviewer's remove naming it) maps to a DSA category, keywords and a
ground; ``banks`` maps hash banks the same way; ``other`` covers the rest (a reviewer's
label the policy has no rule for, a bank not listed). ``submit`` names the Transparency
Database endpoint and the file holding its token; without it statements are produced on
the topic (for the platform to show its users) and sent nowhere.
"""

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, model_validator

from modstream.core.dsa import EEA, EU, Category, Country, Keyword, Visibility, personal_data

Clause = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Explanation = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Reporting(BaseModel):
    """How a restriction for one label (or bank) is reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: Category
    keywords: list[Keyword] = Field(default_factory=list)
    ground: Literal["incompatible", "illegal"] = "incompatible"
    terms: Clause | None = Field(default=None, description="the clause of the terms and conditions (incompatible)")
    law: Clause | None = Field(default=None, description="the legal ground (illegal)")
    explanation: Explanation

    @model_validator(mode="after")
    def _ground_complete(self) -> Self:
        if self.ground == "incompatible" and (self.terms is None or self.law is not None):
            raise ValueError("a restriction on the terms and conditions names its clause in `terms` (and no `law`)")
        if self.ground == "illegal" and (self.law is None or self.terms is not None):
            raise ValueError("a restriction for illegal content names its legal ground in `law` (and no `terms`)")
        for name in ("terms", "law", "explanation"):
            text = getattr(self, name)
            if text is not None and (found := personal_data(text)):
                raise ValueError(f"{name} looks like it holds personal data ({', '.join(found)})")
        return self


class Submission(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: HttpUrl = Field(description="the API's base, e.g. https://transparency.dsa.ec.europa.eu/api/v1")
    token_file: Path = Field(description="a file holding the platform's API token (a secret, never in the policy)")


class StatementRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    visibility: Visibility = "DECISION_VISIBILITY_CONTENT_REMOVED"
    territorial_scope: list[Country] | Literal["EEA", "EU"] = "EEA"
    labels: dict[str, Reporting] = Field(default_factory=dict)
    banks: dict[str, Reporting] = Field(default_factory=dict)
    other: Reporting
    submit: Submission | None = None

    @model_validator(mode="after")
    def _no_other_restriction(self) -> Self:
        if self.visibility == "DECISION_VISIBILITY_OTHER":
            raise ValueError("visibility DECISION_VISIBILITY_OTHER needs a free-text description: choose a named one")
        return self

    def countries(self) -> list[Country]:
        if self.territorial_scope == "EEA":
            return list(EEA)
        if self.territorial_scope == "EU":
            return list(EU)
        return list(self.territorial_scope)

    def for_labels(self, labels: list[str]) -> Reporting:
        """The reporting of the first of ``labels`` that has one (they come most certain first)."""
        return next((self.labels[label] for label in labels if label in self.labels), self.other)

    def for_bank(self, bank: str) -> Reporting:
        return self.banks.get(bank, self.other)


def unmapped_labels(rules: StatementRules, labels: set[str]) -> list[str]:
    """The policy's labels that could block with no reporting of their own."""
    return sorted(labels - set(rules.labels))
