"""The label taxonomy, ``model_repository/taxonomy/taxonomy.yaml``, as the project reads it.

Triton's ``taxonomy`` model applies the file (see its ``1/model.py``); here it is checked
(names, combine rules, and that every class a label needs is one its component names in
its labels file), listed, and asked which labels a profile's ensemble produces.
"""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modstream.models.control import TritonControl, TritonControlError
from modstream.models.repository import Repository, read_labels

FILE = Path("taxonomy") / "taxonomy.yaml"
# Dotted namespaces of lowercase words: sexual.explicit, weapon.firearm, drugs.
LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$")
_STEP = re.compile(r'model_name: "([^"]+)"')


class TaxonomyError(ValueError):
    """A taxonomy that cannot be used; the message names the file and the label."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    component: str = Field(alias="from", min_length=1)
    classes: list[str] = Field(min_length=1)
    combine: Literal["one", "max", "sum"]
    description: str = Field(min_length=1)
    meaning: str = Field(min_length=1, description="what the score is, on its model's own scale")

    @model_validator(mode="after")
    def _combine_fits(self) -> Self:
        if (self.combine == "one") != (len(self.classes) == 1):
            raise ValueError(f"combine {self.combine!r} does not fit {len(self.classes)} classes")
        return self


class Learned(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    component: str = Field(alias="from", min_length=1, description="every class of it is a label of that name")


class TextLabel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1)


class Taxonomy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: dict[str, Rule] = Field(min_length=1)
    learned: Learned | None = None
    text: dict[str, TextLabel] = Field(
        default_factory=dict, description="labels the worker's text rules make from the ocr step's reading"
    )
    out_of_scope: list[str] = Field(default_factory=list, description="harms no label measures")

    def produced_by(self, components: set[str]) -> list[str]:
        """The file's labels an ensemble of these components answers with, in the file's order
        (learned labels come on top: see ``learned_labels``)."""
        return [label for label, rule in self.labels.items() if rule.component in components]

    def learned_labels(self, repository: Path, components: set[str]) -> list[str]:
        """The labels the serving version of the learned component names, if the ensemble runs it."""
        if self.learned is None or self.learned.component not in components:
            return []
        heads = Repository(repository, self.learned.component)
        return [label for label in read_labels(heads.folder / str(heads.serving())) if label not in self.labels]


def read_taxonomy(repository: Path) -> Taxonomy:
    path = repository / FILE
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TaxonomyError(f"{path}: cannot be read: {exc}") from exc
    try:
        taxonomy = Taxonomy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise TaxonomyError(f"{path}: {problems}") from exc
    bad = [label for label in [*taxonomy.labels, *taxonomy.text] if len(label) > 64 or not LABEL.match(label)]
    if bad:
        raise TaxonomyError(f"{path}: labels must be dotted lowercase names (e.g. sexual.explicit): {bad}")
    misplaced = [label for label in taxonomy.text if not label.startswith("text.") or label in taxonomy.labels]
    if misplaced:
        raise TaxonomyError(f"{path}: text: a text label is text.<name> and no model's label: {misplaced}")
    return taxonomy


def missing_classes(taxonomy: Taxonomy, repository: Path) -> list[str]:
    """Every class a label needs that its component's serving labels file does not name."""
    problems = []
    for label, rule in taxonomy.labels.items():
        component = Repository(repository, rule.component)
        known = read_labels(component.folder / str(component.serving()))
        absent = [name for name in rule.classes if name not in known]
        if absent:
            problems.append(f"{label}: {rule.component} has no class {', '.join(absent)}")
    return problems


def ensemble_components(repository: Path, ensemble: str) -> set[str]:
    """The models an ensemble's steps call."""
    return set(_STEP.findall((repository / ensemble / "config.pbtxt").read_text()))


def step_of(repository: Path, ensemble: str) -> str:
    """The ensemble's taxonomy step: the one of its models that reads the taxonomy file."""
    steps = sorted(name for name in ensemble_components(repository, ensemble) if name.startswith("taxonomy"))
    if len(steps) != 1:
        raise TaxonomyError(f"{ensemble} has {len(steps)} taxonomy steps ({steps}); expected one")
    return steps[0]


def reload(repository: Path, triton: TritonControl, ensemble: str, say: Callable[[str], None]) -> Taxonomy:
    """Check the file, then have Triton load the ensemble's taxonomy step again: from its next
    request on, answers carry the labels as the file now names them. A file that fails the
    check is refused and the step keeps what it has."""
    taxonomy = read_taxonomy(repository)
    problems = missing_classes(taxonomy, repository)
    if problems:
        raise TaxonomyError(f"{repository / FILE}: {'; '.join(problems)}")
    step = step_of(repository, ensemble)
    say(f"{len(taxonomy.labels)} labels checked; asking Triton to load {step} again")
    try:
        triton.load(step)
    except TritonControlError as exc:
        raise TaxonomyError(f"Triton could not load {step}: {exc}") from exc
    components = ensemble_components(repository, ensemble)
    labels = taxonomy.produced_by(components) + taxonomy.learned_labels(repository, components)
    say(f"{step} answers with: {', '.join(labels)}")
    return taxonomy
