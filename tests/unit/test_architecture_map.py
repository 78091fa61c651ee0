"""docs/architecture.md is the map: its list of cross-room imports is the code's, read from
the imports themselves, and every room of the code is on its floor plan."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "services" / "modstream"
MAP = (ROOT / "docs" / "architecture.md").read_text()
# Rooms every room may import (the ground) and the room that may import every room (the top).
GROUND, TOP = "core", "cli"


def rooms() -> list[str]:
    return sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def cross_room_imports() -> dict[tuple[str, str], set[str]]:
    """(from room, to room) -> the files that import across, for every import the code has."""
    found: dict[tuple[str, str], set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2 or parts[0] == TOP:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                named = module.split(".")
                if named[0] == "modstream" and len(named) > 1 and named[1] not in (parts[0], GROUND):
                    found.setdefault((parts[0], named[1]), set()).add("/".join(parts))
    return found


def mapped_imports() -> set[tuple[str, str]]:
    section = MAP.split("<!-- cross-room imports: from → to -->")[1].split("<!-- end of cross-room imports -->")[0]
    pairs = set()
    for line in section.splitlines():
        if found := re.match(r"- `(\w+)` → ((?:`\w+`(?:, )?)+):", line):
            pairs |= {(found[1], target) for target in re.findall(r"`(\w+)`", found[2])}
    return pairs


def test_the_map_lists_every_cross_room_import_and_no_other() -> None:
    code = cross_room_imports()
    mapped = mapped_imports()
    assert mapped, "the map's list of cross-room imports is empty or unreadable"
    unlisted = {pair: sorted(files) for pair, files in code.items() if pair not in mapped}
    assert not unlisted, f"imports the map does not list: {unlisted}"
    assert not mapped - set(code), f"the map lists imports the code does not have: {sorted(mapped - set(code))}"


def test_the_ground_imports_no_room() -> None:
    assert not [pair for pair in cross_room_imports() if pair[0] == GROUND]


def test_every_room_is_on_the_floor_plan() -> None:
    plan = MAP.split("## Layers")[1].split("```")[1]
    missing = [room for room in rooms() if f"{room}/" not in plan]
    assert not missing, f"rooms missing from docs/architecture.md's Layers: {missing}"
