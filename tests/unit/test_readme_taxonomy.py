"""The README's taxonomy table says what taxonomy.yaml says, row for row."""

import re

from modstream.core.settings import PROJECT_ROOT
from modstream.models.taxonomy import read_taxonomy

START = "<!-- taxonomy table: tests/unit/test_readme_taxonomy.py checks it against taxonomy.yaml -->"
END = "<!-- end of taxonomy table -->"


def table_rows() -> list[list[str]]:
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme[readme.index(START) + len(START) : readme.index(END)].strip().splitlines()
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]  # after header and rule


def names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_every_label_of_the_file_is_a_row_with_its_component_classes_rule_and_meaning() -> None:
    taxonomy = read_taxonomy(PROJECT_ROOT / "model_repository")
    rows = table_rows()
    assert [names(row[0])[0] for row in rows] == list(taxonomy.labels)
    for (label, rule), (_, component, classes, combine, meaning) in zip(taxonomy.labels.items(), rows, strict=True):
        assert names(component) == [rule.component], label
        assert names(classes) == rule.classes, label
        assert combine == rule.combine, label
        assert meaning == rule.meaning, label
