"""Defined review labels: the name and description rules, the refusals and their messages, and
the ``modstream labels`` refusals that need no server (the registry itself runs on the real
Redis in tests/integration/test_review_labels.py)."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from modstream.core.labels import LabelDefinition, LabelError, label_definition
from modstream.core.ports import free_port
from modstream.core.settings import Settings
from pydantic import ValidationError

from tests.commands import modstream

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "name", ["emblem.red", "scam.layout", "drugs", "a", "0day", "x_y-z.q2", "a.b.c.d", "n" * 64, "a." + "b" * 62]
)
def test_dotted_lowercase_names_of_at_most_64_characters_are_labels(name: str) -> None:
    definition = label_definition(name, "a red emblem", "ada", at=AT)
    assert (definition.name, definition.description, definition.defined_by) == (name, "a red emblem", "ada")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Emblem.Red",
        "emblem red",
        "emblem..red",
        ".emblem",
        "emblem.",
        "-emblem",
        "emblem._red",
        "emblem/red",
        "émblème",
        "n" * 65,
        "a." + "b" * 63,
        " emblem.red",
    ],
)
def test_other_names_are_refused_naming_the_rule(name: str) -> None:
    with pytest.raises(LabelError) as refused:
        label_definition(name, "a red emblem", "ada")
    assert str(refused.value) == (
        f"label {name!r}: the name must be a dotted lowercase name like emblem.red "
        "(a-z, 0-9, '_' and '-' between the dots, at most 64 characters)"
    )


@pytest.mark.parametrize(
    ("description", "problem"),
    [
        ("", "description: String should have at least 1 character"),
        ("   ", "description: String should have at least 1 character"),
        ("x" * 501, "description: String should have at most 500 characters"),
    ],
)
def test_a_description_of_1_to_500_characters_is_required(description: str, problem: str) -> None:
    with pytest.raises(LabelError) as refused:
        label_definition("emblem.red", description, "ada")
    assert str(refused.value) == f"label 'emblem.red': {problem}"
    assert label_definition("emblem.red", " " + "x" * 500 + " ", "ada").description == "x" * 500  # trimmed


def test_a_bad_name_and_a_bad_description_are_both_named() -> None:
    with pytest.raises(LabelError, match=r"the name must be .*; description: String should have at least 1"):
        label_definition("Bad Name", "", "ada")


def test_a_taxonomy_label_cannot_be_defined() -> None:
    taxonomy = ["sexual.explicit", "drugs"]
    with pytest.raises(LabelError) as refused:
        label_definition("drugs", "drugs, again", "ada", taxonomy=taxonomy)
    assert (
        str(refused.value) == "label 'drugs' is one of the taxonomy's labels (the models score it): pick another name"
    )
    assert label_definition("drugs.pills", "pills", "ada", taxonomy=taxonomy).name == "drugs.pills"


def test_label_error_is_a_value_error() -> None:
    assert issubclass(LabelError, ValueError)


def test_a_definition_keeps_when_it_was_made_in_utc() -> None:
    before = datetime.now(UTC)
    made = label_definition("emblem.red", "a red emblem", "ada")
    assert made.defined_at.tzinfo is UTC and before <= made.defined_at <= datetime.now(UTC)
    paris = datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    converted = LabelDefinition(name="emblem.red", description="d", defined_by="ada", defined_at=paris)
    assert converted.defined_at == AT and converted.defined_at.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError, match="defined_at must carry its time zone"):
        LabelDefinition(name="emblem.red", description="d", defined_by="ada", defined_at=datetime(2025, 3, 1))


def test_a_definition_is_frozen_strict_and_survives_json() -> None:
    made = label_definition("emblem.red", "a red emblem", "ada", at=AT)
    assert LabelDefinition.model_validate_json(made.model_dump_json()) == made
    with pytest.raises(ValidationError):
        made.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        LabelDefinition.model_validate({**made.model_dump(), "colour": "red"})
    with pytest.raises(ValidationError, match="defined_by"):
        LabelDefinition(name="emblem.red", description="d", defined_by="", defined_at=AT)


# --- the command's refusals before any server is asked -------------------------------


def nowhere(tmp_path: Path, **overrides: object) -> Settings:
    """Settings whose Redis nothing listens on: a command that gets that far says so."""
    values: dict[str, object] = {"redis_url": f"redis://127.0.0.1:{free_port()}/0", "state_dir": tmp_path}
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


def test_the_command_refuses_a_bad_name_with_exit_2(tmp_path: Path) -> None:
    done = modstream(nowhere(tmp_path), "labels", "add", "Emblem.Red", "--description", "a red emblem")
    assert done.returncode == 2, done.stderr
    assert "refused: label 'Emblem.Red': the name must be a dotted lowercase name like emblem.red" in done.stderr


def test_the_command_refuses_a_taxonomy_label_with_exit_2(tmp_path: Path) -> None:
    done = modstream(nowhere(tmp_path), "labels", "add", "sexual.explicit", "--description", "again")
    assert done.returncode == 2, done.stderr
    assert "refused: label 'sexual.explicit' is one of the taxonomy's labels" in done.stderr


def test_the_command_refuses_when_the_taxonomy_cannot_be_read(tmp_path: Path) -> None:
    settings = nowhere(tmp_path, model_repository=tmp_path / "no-repository")
    done = modstream(settings, "labels", "add", "emblem.red", "--description", "a red emblem")
    assert done.returncode == 2, done.stderr
    assert "refused: the name cannot be checked against the taxonomy:" in done.stderr
    assert "taxonomy.yaml: cannot be read" in done.stderr


def test_an_unreachable_redis_is_named_with_exit_1(tmp_path: Path) -> None:
    for args in (("add", "emblem.red", "--description", "a red emblem"), ("list",), ("remove", "emblem.red")):
        done = modstream(nowhere(tmp_path), "labels", *args)
        assert done.returncode == 1, (args, done.stderr)
        assert "cannot reach Redis (MODSTREAM_REDIS_URL)" in done.stderr, args
